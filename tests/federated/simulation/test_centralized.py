"""The centralized reference: what it trains each round, shuffled each epoch, evaluated when."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from federated.round_settings import RoundSettings
from model.dataset import NamesDataset, load_names

pytestmark = pytest.mark.slow  # starts TensorFlow, TFF or real processes


@pytest.fixture(scope="module")
def small_ds(data_dir: Path) -> NamesDataset:
    ds = load_names(data_dir)
    return ds.subset(np.arange(0, len(ds), 6))  # every 6th row: all 18 languages, ~3,000 names


def test_centralized_reference_with_a_step_cap_trains_what_a_federated_round_does(
    small_ds: NamesDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tensorflow as tf

    from federated.simulation.centralized import run_centralized
    from federated.simulation.config import SimulationConfig
    from federated.simulation.data import prepare_data

    seen: list[tuple[int, int]] = []
    real_fit = tf.keras.Model.fit

    def fit(self: tf.keras.Model, x: np.ndarray, y: np.ndarray, **kw: object) -> object:
        seen.append((len(x), int(kw.get("epochs", 1))))  # type: ignore[call-overload]
        return real_fit(self, x, y, **kw)

    monkeypatch.setattr(tf.keras.Model, "fit", fit)
    cfg = SimulationConfig(
        clients=2,
        rounds=2,
        settings=RoundSettings(local_steps=3, local_epochs=2),
        units=4,
        embed_dim=4,
    )
    run_centralized(prepare_data(small_ds, 2, "iid", seed=0), cfg, tmp_path)
    # 3 batches of 32 for each of the 2 sampled clients, once (the cap ends the round early).
    assert seen == [(3 * 32 * 2, 1)] * 2


def test_centralized_reference_reshuffles_every_epoch(
    small_ds: NamesDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keras' fit(shuffle=True) repeats one permutation per call under a global seed: not used."""
    import tensorflow as tf

    from federated.simulation.centralized import run_centralized
    from federated.simulation.config import SimulationConfig
    from federated.simulation.data import prepare_data

    rounds: list[np.ndarray] = []
    real_fit = tf.keras.Model.fit

    def fit(self: tf.keras.Model, x: np.ndarray, y: np.ndarray, **kw: object) -> object:
        assert kw.get("shuffle") is False
        rounds.append(np.array(x))
        return real_fit(self, x, y, **kw)

    monkeypatch.setattr(tf.keras.Model, "fit", fit)
    data = prepare_data(small_ds, 2, "iid", seed=0)
    cfg = SimulationConfig(
        clients=2, rounds=2, settings=RoundSettings(local_epochs=2), units=4, embed_dim=4
    )
    run_centralized(data, cfg, tmp_path)
    n = len(data.train_labels)
    key = sorted(map(tuple, data.train_ids.tolist()))
    epochs = [e for r in rounds for e in (r[:n], r[n:])]
    assert len(epochs) == 4 and all(sorted(map(tuple, e.tolist())) == key for e in epochs)
    assert all(not np.array_equal(a, b) for i, a in enumerate(epochs) for b in epochs[i + 1 :])


def test_eval_every_records_only_the_evaluated_rounds_but_trains_every_round(
    small_ds: NamesDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tensorflow as tf

    from federated.simulation.centralized import run_centralized
    from federated.simulation.config import SimulationConfig
    from federated.simulation.data import prepare_data

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
