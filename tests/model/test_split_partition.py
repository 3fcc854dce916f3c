"""Name-disjoint splits and the four partition schemes, on the real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.dataset import NamesDataset, load_names
from model.partition import PartitionError, PartitionScheme, partition
from model.split import split_by_name


@pytest.fixture(scope="module")
def ds(data_dir: Path) -> NamesDataset:
    return load_names(data_dir)


def _names(ds: NamesDataset, rows: np.ndarray) -> set[str]:
    return {ds.names[int(i)] for i in rows}


def test_split_is_name_disjoint_complete_stratified_and_seeded(ds: NamesDataset) -> None:
    train, test = split_by_name(ds, 0.2, seed=7)
    assert not _names(ds, train) & _names(ds, test)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(ds)))
    assert 0.18 < len(test) / len(ds) < 0.22
    for lab in range(len(ds.languages)):  # every language, even the smallest, is tested
        assert np.sum(ds.labels[test] == lab) >= 5
    again, _ = split_by_name(ds, 0.2, seed=7)
    other, _ = split_by_name(ds, 0.2, seed=8)
    assert np.array_equal(train, again) and not np.array_equal(train, other)


def test_names_with_several_languages_stay_on_one_side(ds: NamesDataset) -> None:
    train, test = split_by_name(ds, 0.3, seed=1)
    side = {}
    for rows, tag in ((train, "train"), (test, "test")):
        for r in rows:
            assert side.setdefault(ds.names[int(r)], tag) == tag


@pytest.mark.parametrize("scheme", ["iid", "dirichlet:0.3", "language", "sorted-halves"])
@pytest.mark.parametrize("n", [2, 10])
def test_partitions_cover_training_rows_once_with_name_disjoint_holdouts(
    ds: NamesDataset, scheme: str, n: int
) -> None:
    train, _ = split_by_name(ds, 0.2, seed=0)
    parts = partition(ds, train, n, scheme, seed=3)
    assert len(parts) == n
    allrows = np.concatenate([np.concatenate([p.train, p.holdout]) for p in parts])
    assert sorted(allrows.tolist()) == sorted(train.tolist())
    for p in parts:
        assert len(p.train) > 0 and len(p.holdout) > 0
        assert not _names(ds, p.train) & _names(ds, p.holdout)


def _dominant_share(ds: NamesDataset, rows: np.ndarray) -> float:
    return float(np.bincount(ds.labels[rows]).max() / len(rows))


def test_schemes_produce_the_skew_they_promise(ds: NamesDataset) -> None:
    train, _ = split_by_name(ds, 0.2, seed=0)
    iid = partition(ds, train, 18, "iid", seed=0)
    lang = partition(ds, train, 18, "language", seed=0)
    iid_share = np.mean([_dominant_share(ds, np.concatenate([p.train, p.holdout])) for p in iid])
    lang_share = np.mean([_dominant_share(ds, np.concatenate([p.train, p.holdout])) for p in lang])
    assert iid_share < 0.6 < 0.8 < lang_share
    halves = partition(ds, train, 2, "sorted-halves", seed=0)
    first = {
        ds.languages[i] for i in ds.labels[np.concatenate([halves[0].train, halves[0].holdout])]
    }
    second = {
        ds.languages[i] for i in ds.labels[np.concatenate([halves[1].train, halves[1].holdout])]
    }
    assert len(first & second) <= 1  # contiguous cut through the language-sorted rows
    assert max(first) <= min(second)


def test_scheme_parsing_errors_are_specific() -> None:
    assert PartitionScheme.parse("dirichlet:0.5") == PartitionScheme("dirichlet", 0.5)
    with pytest.raises(PartitionError, match="choose one of"):
        PartitionScheme.parse("random")
    with pytest.raises(PartitionError, match="positive"):
        PartitionScheme.parse("dirichlet:-1")


def test_too_many_devices_is_refused(ds: NamesDataset) -> None:
    with pytest.raises(PartitionError, match="fewer devices"):
        partition(ds, np.arange(10), 5, "iid", seed=0)
