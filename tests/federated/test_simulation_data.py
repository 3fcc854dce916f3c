"""The simulation's data glue and its on-device evaluation: real data, real TFLite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.config import MAX_LEN
from model.dataset import NamesDataset, load_names


@pytest.fixture(scope="module")
def small_ds(data_dir: Path) -> NamesDataset:
    ds = load_names(data_dir)
    return ds.subset(np.arange(0, len(ds), 6))  # every 6th row: all 18 languages, ~3,000 names


def test_global_test_split_is_name_disjoint_from_every_device(small_ds: NamesDataset) -> None:
    from federated.sim_data import prepare_data

    data = prepare_data(small_ds, 4, "iid", seed=3)
    test = set(data.test_names)
    assert len(data.clients) == 4 and test
    seen_train: set[str] = set()
    for c in data.clients:
        train_names = {data_name for data_name in _decode(data, c.train_ids)}
        assert not test & set(c.holdout_names)
        assert not test & train_names
        # A device's held-out names are new to that device.
        assert not set(c.holdout_names) & train_names
        seen_train |= train_names
    # The vocabulary comes from the devices' training names only.
    assert set(data.vocab.chars) == {ch for n in seen_train for ch in n}
    rows = sum(c.num_train + len(c.holdout_names) for c in data.clients) + len(data.test_names)
    assert rows == len(small_ds)


def _decode(data: object, ids: np.ndarray) -> list[str]:
    chars = data.vocab.chars  # type: ignore[attr-defined]
    return ["".join(chars[i - 2] for i in row if i >= 2) for row in ids]


def test_same_seed_same_partition_other_seed_other(small_ds: NamesDataset) -> None:
    from federated.sim_data import prepare_data

    a, b = (prepare_data(small_ds, 3, "dirichlet:0.5", seed=1) for _ in range(2))
    c = prepare_data(small_ds, 3, "dirichlet:0.5", seed=2)
    assert all(
        np.array_equal(x.train_ids, y.train_ids) for x, y in zip(a.clients, b.clients, strict=True)
    )
    assert any(
        x.num_train != y.num_train or not np.array_equal(x.train_ids, y.train_ids)
        for x, y in zip(a.clients, c.clients, strict=True)
    )


def test_client_dataset_covers_every_row_once_per_epoch_reshuffled(small_ds: NamesDataset) -> None:
    from federated.sim_data import client_dataset, prepare_data

    client = prepare_data(small_ds, 2, "iid", seed=0).clients[0]
    batches = list(client_dataset(client, epochs=2, batch_size=32, seed=5).as_numpy_iterator())
    per_epoch = -(-client.num_train // 32)
    assert len(batches) == 2 * per_epoch
    assert all(x.shape[1] == MAX_LEN and x.dtype == np.int32 for x, _ in batches)
    epochs = [batches[:per_epoch], batches[per_epoch:]]
    key = {(*r, int(y)) for r, y in zip(client.train_ids, client.train_labels, strict=True)}
    orders = []
    for ep in epochs:
        rows = [(*r, int(y)) for x, ys in ep for r, y in zip(x, ys, strict=True)]
        assert len(rows) == client.num_train and set(rows) == key
        orders.append(rows)
    assert orders[0] != orders[1]


def test_client_dataset_with_a_step_cap_takes_that_many_batches_a_new_subset_each_seed(
    small_ds: NamesDataset,
) -> None:
    from federated.sim_data import client_dataset, prepare_data

    client = prepare_data(small_ds, 2, "iid", seed=0).clients[0]
    assert client.num_train > 3 * 32

    def rows(seed: int) -> list[tuple[int, ...]]:
        ds = client_dataset(client, epochs=1, batch_size=32, seed=seed, max_steps=3)
        batches = list(ds.as_numpy_iterator())
        assert [len(y) for _, y in batches] == [32, 32, 32]
        return [tuple(r) for x, _ in batches for r in x]

    assert rows(1) != rows(2)


def test_centralized_reference_with_a_step_cap_trains_what_a_federated_round_does(
    small_ds: NamesDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tensorflow as tf

    from federated.sim_data import prepare_data
    from federated.simulation import SimulationConfig, run_centralized

    seen: list[tuple[int, int]] = []
    real_fit = tf.keras.Model.fit

    def fit(self: tf.keras.Model, x: np.ndarray, y: np.ndarray, **kw: object) -> object:
        seen.append((len(x), int(kw.get("epochs", 1))))  # type: ignore[call-overload]
        return real_fit(self, x, y, **kw)

    monkeypatch.setattr(tf.keras.Model, "fit", fit)
    cfg = SimulationConfig(clients=2, rounds=2, local_steps=3, local_epochs=2, units=4, embed_dim=4)
    run_centralized(prepare_data(small_ds, 2, "iid", seed=0), cfg, tmp_path)
    # 3 batches of 32 for each of the 2 sampled clients, once (the cap ends the round early).
    assert seen == [(3 * 32 * 2, 1)] * 2


def test_centralized_reference_reshuffles_every_epoch(
    small_ds: NamesDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keras' fit(shuffle=True) repeats one permutation per call under a global seed: not used."""
    import tensorflow as tf

    from federated.sim_data import prepare_data
    from federated.simulation import SimulationConfig, run_centralized

    rounds: list[np.ndarray] = []
    real_fit = tf.keras.Model.fit

    def fit(self: tf.keras.Model, x: np.ndarray, y: np.ndarray, **kw: object) -> object:
        assert kw.get("shuffle") is False
        rounds.append(np.array(x))
        return real_fit(self, x, y, **kw)

    monkeypatch.setattr(tf.keras.Model, "fit", fit)
    data = prepare_data(small_ds, 2, "iid", seed=0)
    cfg = SimulationConfig(clients=2, rounds=2, local_epochs=2, units=4, embed_dim=4)
    run_centralized(data, cfg, tmp_path)
    n = len(data.train_labels)
    key = sorted(map(tuple, data.train_ids.tolist()))
    epochs = [e for r in rounds for e in (r[:n], r[n:])]
    assert len(epochs) == 4 and all(sorted(map(tuple, e.tolist())) == key for e in epochs)
    assert all(not np.array_equal(a, b) for i, a in enumerate(epochs) for b in epochs[i + 1 :])


def test_fleet_metrics_are_the_devices_reports_weighted_by_examples(
    small_ds: NamesDataset, tmp_path: Path
) -> None:
    from edge.runtime import Classifier
    from federated.sim_data import (
        build_model,
        initial_weights,
        prepare_data,
        simulation_model_config,
    )
    from federated.simulation import EVAL_KINDS, export_candidate, fleet_evaluation
    from model.metrics import classification_metrics

    data = prepare_data(small_ds, 3, "language", seed=0)
    cfg = simulation_model_config(data, units=8, embed_dim=4)
    model = build_model(cfg, initial_weights(cfg, 0))
    model_dir = export_candidate(model, cfg, data, data.train_ids, "t1", tmp_path / "m")
    ev = fleet_evaluation(model_dir, data)
    holdout = sum(len(c.holdout_names) for c in data.clients)
    names = [n for c in data.clients for n in c.holdout_names]
    labels = np.concatenate([c.holdout_labels for c in data.clients])
    for kind in EVAL_KINDS:
        assert ev.fleet[kind].n_examples == holdout and ev.fleet[kind].n_devices == 3
        assert ev.test[kind]["n"] == len(data.test_names)
        # Per-device accuracy weighted by examples is the pooled accuracy over all devices.
        clf = Classifier.from_dir(model_dir, kind)
        pred = np.argmax(clf.logits(clf.vocab.encode(names)), axis=1)
        pooled = classification_metrics(labels, pred, len(data.languages))
        assert ev.fleet[kind].accuracy == pytest.approx(pooled["accuracy"], abs=1e-9)


def test_a_given_vocabulary_is_used_for_every_device(small_ds: NamesDataset) -> None:
    """A run that starts from a model (--init-model) encodes with that model's vocabulary."""
    from federated.sim_data import prepare_data
    from model.encoding import Vocab, public_alphabet

    vocab = Vocab(public_alphabet(), MAX_LEN)
    own = prepare_data(small_ds, 2, "iid", 0)
    given = prepare_data(small_ds, 2, "iid", 0, vocab=vocab)
    assert given.vocab == vocab and own.vocab != vocab
    for a, b in zip(own.clients, given.clients, strict=True):
        assert len(a.train_ids) == len(b.train_ids)
        assert not np.array_equal(a.train_ids, b.train_ids)  # other ids for the same names
    assert given.start_weights is None


def test_eval_every_records_only_the_evaluated_rounds_but_trains_every_round(
    small_ds: NamesDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tensorflow as tf

    from federated.sim_data import prepare_data
    from federated.simulation import SimulationConfig, run_centralized

    fits: list[int] = []
    real_fit = tf.keras.Model.fit

    def fit(self: tf.keras.Model, x: np.ndarray, y: np.ndarray, **kw: object) -> object:
        fits.append(len(x))
        return real_fit(self, x, y, **kw)

    monkeypatch.setattr(tf.keras.Model, "fit", fit)
    cfg = SimulationConfig(clients=2, rounds=3, eval_every=2, units=4, embed_dim=4)
    seen: list[int] = []
    run = run_centralized(
        prepare_data(small_ds, 2, "iid", seed=0), cfg, tmp_path, lambda r: seen.append(r.round)
    )
    assert len(fits) == 3
    assert [r.round for r in run.rounds] == seen == [2, 3]
