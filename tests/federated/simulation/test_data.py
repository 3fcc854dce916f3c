"""The simulation's data glue: the split, the partition, the devices' tf.data streams."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.config import MAX_LEN
from model.dataset import NamesDataset, load_names

pytestmark = pytest.mark.slow  # starts TensorFlow, TFF or real processes


@pytest.fixture(scope="module")
def small_ds(data_dir: Path) -> NamesDataset:
    ds = load_names(data_dir)
    return ds.subset(np.arange(0, len(ds), 6))  # every 6th row: all 18 languages, ~3,000 names


def test_global_test_split_is_name_disjoint_from_every_device(small_ds: NamesDataset) -> None:
    from federated.simulation.data import prepare_data

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
    from federated.simulation.data import prepare_data

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
    from federated.simulation.data import client_dataset, prepare_data

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
    from federated.simulation.data import client_dataset, prepare_data

    client = prepare_data(small_ds, 2, "iid", seed=0).clients[0]
    assert client.num_train > 3 * 32

    def rows(seed: int) -> list[tuple[int, ...]]:
        ds = client_dataset(client, epochs=1, batch_size=32, seed=seed, max_steps=3)
        batches = list(ds.as_numpy_iterator())
        assert [len(y) for _, y in batches] == [32, 32, 32]
        return [tuple(r) for x, _ in batches for r in x]

    assert rows(1) != rows(2)


def test_a_given_vocabulary_is_used_for_every_device(small_ds: NamesDataset) -> None:
    """A run that starts from a model (--init-model) encodes with that model's vocabulary."""
    from federated.simulation.data import prepare_data
    from model.encoding import Vocab, public_alphabet

    vocab = Vocab(public_alphabet(), MAX_LEN)
    own = prepare_data(small_ds, 2, "iid", 0)
    given = prepare_data(small_ds, 2, "iid", 0, vocab=vocab)
    assert given.vocab == vocab and own.vocab != vocab
    for a, b in zip(own.clients, given.clients, strict=True):
        assert len(a.train_ids) == len(b.train_ids)
        assert not np.array_equal(a.train_ids, b.train_ids)  # other ids for the same names
    assert given.start_weights is None
