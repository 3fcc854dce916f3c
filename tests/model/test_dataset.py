"""The data loader: real counts on the real data set, and a clear error for each bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.dataset import (
    DataDirNotFound,
    EmptyLanguageFile,
    NoDataConfigured,
    NoLanguageFiles,
    TooFewLanguages,
    UndecodableFile,
    load_names,
    resolve_data_dir,
)
from model.download import EXPECTED_LINES, verify_names_dir


def test_real_data_counts_match_the_published_line_counts(data_dir: Path) -> None:
    ds = load_names(data_dir)
    assert ds.raw_line_counts == EXPECTED_LINES
    assert len(ds.languages) == 18
    counts = ds.counts()
    # Arabic's 2,000 lines hold only ~108 distinct names: duplicates are collapsed.
    assert counts["Arabic"] < 120
    assert ds.dropped_debris >= 20  # "To The First Page" lines in Russian.txt
    assert "To The First Page" not in ds.names
    assert len(set(zip(ds.names, ds.labels.tolist(), strict=True))) == len(ds)


def test_verify_names_dir_accepts_the_shared_copy(data_dir: Path) -> None:
    assert verify_names_dir(data_dir) == EXPECTED_LINES


def _write(d: Path, files: dict[str, bytes]) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (d / name).write_bytes(data)
    return d


@pytest.mark.parametrize(
    ("files", "error", "fragment"),
    [
        ({}, NoLanguageFiles, "no <Language>.txt"),
        ({"A.txt": b"Abe\n"}, TooFewLanguages, "at least two"),
        ({"A.txt": b"Abe\n", "B.txt": b"\n  \n"}, EmptyLanguageFile, "B.txt"),
        ({"A.txt": b"Abe\n", "B.txt": b"caf\xe9\n"}, UndecodableFile, "UTF-8"),
        ({"A.txt": b"Abe\n", "B.txt": b"\x00\x01\x02binary"}, UndecodableFile, "binary"),
        ({"A.txt": b"Abe\n", "B.txt": b"123\n::\n"}, EmptyLanguageFile, "no usable names"),
    ],
)
def test_bad_data_dirs_raise_a_specific_error_naming_the_fix(
    tmp_path: Path, files: dict[str, bytes], error: type[Exception], fragment: str
) -> None:
    d = _write(tmp_path / "names", files)
    with pytest.raises(error, match=fragment):
        load_names(d)


def test_missing_directory_and_file_instead_of_directory(tmp_path: Path) -> None:
    with pytest.raises(DataDirNotFound, match="--data"):
        load_names(tmp_path / "nope")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(DataDirNotFound, match="not a directory"):
        load_names(tmp_path / "f.txt")


def test_resolve_prefers_flag_then_env_then_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIFED_DATA", str(tmp_path / "env"))
    assert resolve_data_dir(str(tmp_path / "flag")) == tmp_path / "flag"
    assert resolve_data_dir(None) == tmp_path / "env"
    monkeypatch.delenv("PIFED_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(NoDataConfigured, match="pifed data download"):
        resolve_data_dir(None)
    _write(tmp_path / "cache" / "pifed" / "names", {"A.txt": b"Abe\n"})
    assert resolve_data_dir(None) == tmp_path / "cache" / "pifed" / "names"


def test_a_pi_may_hold_one_language_only(tmp_path: Path) -> None:
    d = _write(tmp_path / "names", {"Greek.txt": b"Adamidis\nPapadopoulos\n"})
    ds = load_names(d, min_languages=1)
    assert ds.languages == ("Greek",) and len(ds) == 2
    with pytest.raises(TooFewLanguages, match="at least two"):
        load_names(d)
