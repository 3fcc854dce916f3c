"""`pifed data split`: one names folder per Pi, by distinct name, with the partition schemes.

In-process (``pifed.cli.main``), so the fast lane runs them: no TensorFlow, no process.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.dataset import NamesDataset, load_names
from model.deal import deal_to_devices, one_device_per_name
from pifed.cli import main


def _split(data_dir: Path, out: Path, *extra: str) -> int:
    return main(["data", "split", "--data", str(data_dir), "--out", str(out), *extra])


def _pairs(folder: Path) -> set[tuple[str, str]]:
    ds = load_names(folder, min_languages=1)
    return {(n, ds.languages[int(y)]) for n, y in zip(ds.names, ds.labels, strict=True)}


@pytest.fixture(scope="module")
def ds(data_dir: Path) -> NamesDataset:
    return load_names(data_dir)


def test_every_name_lands_in_exactly_one_loadable_device_folder(
    data_dir: Path, ds: NamesDataset, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fleet"
    assert _split(data_dir, out, "--devices", "4", "--partition", "iid", "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert [d["device"] for d in doc["devices"]] == ["pi-1", "pi-2", "pi-3", "pi-4"]
    assert doc["test"] is None
    folders = sorted(p.name for p in out.iterdir())
    assert folders == ["pi-1", "pi-2", "pi-3", "pi-4"]
    pairs = [_pairs(out / f) for f in folders]
    union = set().union(*pairs)
    assert sum(len(p) for p in pairs) == len(union) == len(ds)  # every pair, once
    names = [{n for n, _ in p} for p in pairs]
    for i in range(4):  # a surname with several languages is on one Pi only
        for j in range(i + 1, 4):
            assert not names[i] & names[j]
    for d, p in zip(doc["devices"], pairs, strict=True):
        assert d["names"] == len(p) and sum(d["languages"].values()) == len(p)


def test_holdout_frac_keeps_a_name_disjoint_test_folder(
    data_dir: Path, ds: NamesDataset, tmp_path: Path
) -> None:
    out = tmp_path / "fleet"
    assert _split(data_dir, out, "--devices", "2", "--holdout-frac", "0.2") == 0
    test = {n for n, _ in _pairs(out / "test_names")}
    devs = [_pairs(out / f"pi-{i}") for i in (1, 2)]
    assert 0.18 < len(_pairs(out / "test_names")) / len(ds) < 0.22
    assert len(_pairs(out / "test_names")) + sum(len(d) for d in devs) == len(ds)
    assert not test & {n for d in devs for n, _ in d}


def _dominant_share(folder: Path) -> float:
    counts = load_names(folder, min_languages=1).counts()
    return max(counts.values()) / sum(counts.values())


def test_schemes_give_their_skew(data_dir: Path, tmp_path: Path) -> None:
    shares = {}
    for scheme in ("iid", "language"):
        out = tmp_path / scheme
        assert _split(data_dir, out, "--devices", "18", "--partition", scheme) == 0
        shares[scheme] = [_dominant_share(out / f"pi-{i}") for i in range(1, 19)]
    # Each Pi mostly one language (its home). A few small languages share many names with a
    # big one (Scottish with English) and a name stays whole on one Pi, so they skew less.
    assert np.median(shares["language"]) > 0.8
    assert sum(s > 0.7 for s in shares["language"]) >= 14
    whole = _dominant_share(data_dir)  # Russian, about half of the distinct pairs
    assert all(abs(s - whole) < 0.06 for s in shares["iid"])  # iid mirrors the data set
    out = tmp_path / "halves"
    assert _split(data_dir, out, "--devices", "2", "--partition", "sorted-halves") == 0
    halves = [load_names(out / f"pi-{i}", min_languages=1).counts() for i in (1, 2)]
    whole = [
        max(h.get(lang, 0) for h in halves) / sum(h.get(lang, 0) for h in halves)
        for lang in set(halves[0]) | set(halves[1])
    ]
    # Contiguous by language: one language is cut; the others sit (almost) wholly on one Pi
    # (a name shared with a language of the other half goes with its rarer language).
    assert sum(w > 0.9 for w in whole) >= 17


def test_same_seed_same_folders_other_seed_other_folders(data_dir: Path, tmp_path: Path) -> None:
    def deal(tag: str, seed: str) -> list[set[tuple[str, str]]]:
        out = tmp_path / tag
        args = ("--devices", "3", "--partition", "dirichlet:0.5", "--seed", seed)
        assert _split(data_dir, out, *args) == 0
        return [_pairs(out / f"pi-{i}") for i in (1, 2, 3)]

    assert deal("a", "7") == deal("b", "7")
    assert deal("c", "7") != deal("d", "8")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (("--devices", "0"), "--devices must be at least 1"),
        (("--devices", "2", "--partition", "bogus"), "choose one of iid"),
        (("--devices", "2", "--partition", "dirichlet:-1"), "ALPHA must be a positive"),
        (("--devices", "9000"), "use fewer devices (at most 4503)"),
        (("--devices", "2", "--holdout-frac", "1.5"), "--holdout-frac must be in [0, 1)"),
    ],
)
def test_bad_flags_are_exit_2_naming_the_problem_and_write_nothing(
    data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: tuple[str, ...],
    expected: str,
) -> None:
    out = tmp_path / "fleet"
    assert _split(data_dir, out, *extra) == 2
    assert expected in capsys.readouterr().err
    assert not out.exists()


def test_missing_data_is_exit_2_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _split(tmp_path / "nope", tmp_path / "fleet", "--devices", "2") == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "--data" in err


def test_an_out_folder_that_is_not_empty_is_never_overwritten(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fleet"
    out.mkdir()
    assert _split(data_dir, out, "--devices", "2") == 0  # an empty folder is fine
    before = {p: p.read_bytes() for p in out.rglob("*.txt")}
    assert _split(data_dir, out, "--devices", "3", "--seed", "5") == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "never overwrites" in err and "new --out" in err
    assert {p: p.read_bytes() for p in out.rglob("*.txt")} == before
    assert not (out / "pi-3").exists()


def test_one_device_per_name_moves_a_shared_name_wholly(ds: NamesDataset) -> None:
    shared = next(n for n in set(ds.names) if ds.names.count(n) >= 2)
    rows = [i for i, n in enumerate(ds.names) if n == shared]
    other = np.array([i for i in range(50) if i not in rows], dtype=np.int64)
    parts = [np.array(rows[:1] + list(other), dtype=np.int64), np.array(rows[1:], dtype=np.int64)]
    fixed = one_device_per_name(ds, parts)
    holders = [d for d, p in enumerate(fixed) if set(p.tolist()) & set(rows)]
    assert len(holders) == 1
    assert sorted(np.concatenate(fixed).tolist()) == sorted(np.concatenate(parts).tolist())


def test_the_demo_deal_keeps_its_test_part_off_every_device(ds: NamesDataset) -> None:
    deal = deal_to_devices(ds, 3, "iid", seed=0, test_frac=0.2)
    test = {ds.names[int(i)] for i in deal.test}
    for rows in deal.devices:
        assert not test & {ds.names[int(i)] for i in rows}
    assert sum(len(r) for r in deal.devices) + len(deal.test) == len(ds)
