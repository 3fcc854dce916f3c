"""Load the 18-language surname data set from a directory of ``<Language>.txt`` files.

The data never ships with pifed: it is read from ``--data DIR`` or ``$PIFED_DATA``, or from
the download cache that ``pifed data download`` fills. Lines are normalised once (``encoding``),
scraping debris is dropped, and duplicate (name, language) lines are collapsed, so that a language
with 2,000 lines but 108 distinct names (Arabic) is not counted 20 times over.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.encoding import normalize_name

DATA_ENV = "PIFED_DATA"

# Lines of scraping debris in the public data set (Russian.txt), compared after normalisation.
_DEBRIS = frozenset({"To The First Page"})


class DataError(ValueError):
    """Base class for every problem with a names directory."""


class DataDirNotFound(DataError):
    """The names directory does not exist or is not a directory."""


class NoLanguageFiles(DataError):
    """The directory holds no ``<Language>.txt`` files."""


class EmptyLanguageFile(DataError):
    """A language file has no usable names."""


class UndecodableFile(DataError):
    """A language file is not UTF-8 text."""


class TooFewLanguages(DataError):
    """A classifier needs at least two languages."""


class NoDataConfigured(DataError):
    """Neither ``--data`` nor ``$PIFED_DATA`` nor the download cache gives a directory."""


@dataclass(frozen=True)
class NamesDataset:
    """Distinct (name, language) pairs, with the raw line counts kept for reporting."""

    languages: tuple[str, ...]
    names: tuple[str, ...]
    labels: np.ndarray  # int32 index into ``languages``, one per name
    raw_line_counts: dict[str, int]
    dropped_debris: int

    def __len__(self) -> int:
        return len(self.names)

    def counts(self) -> dict[str, int]:
        """Distinct pairs per language."""
        c = Counter(int(i) for i in self.labels)
        return {lang: c.get(i, 0) for i, lang in enumerate(self.languages)}

    def subset(self, idx: np.ndarray) -> NamesDataset:
        """The rows ``idx`` as a dataset with the same language list (so labels stay aligned)."""
        return NamesDataset(
            languages=self.languages,
            names=tuple(self.names[int(i)] for i in idx),
            labels=self.labels[idx].astype(np.int32),
            raw_line_counts=self.raw_line_counts,
            dropped_debris=self.dropped_debris,
        )


def default_cache_dir() -> Path:
    """Where ``pifed data download`` unpacks the data set (XDG cache convention)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pifed" / "names"


def resolve_data_dir(flag: str | os.PathLike[str] | None) -> Path:
    """Pick the names directory: ``--data`` first, then ``$PIFED_DATA``, then the download cache."""
    if flag:
        return Path(flag)
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    cache = default_cache_dir()
    if cache.is_dir() and any(cache.glob("*.txt")):
        return cache
    raise NoDataConfigured(
        "no names data configured: pass --data DIR (a folder of <Language>.txt files), "
        f"set {DATA_ENV}=DIR, or run `pifed data download` to fetch it into {cache}"
    )


def write_names(ds: NamesDataset, rows: np.ndarray, folder: Path) -> Path:
    """Rows of ``ds`` as a names folder in the data set's own layout (one ``<Language>.txt``
    each, written atomically), so anything that takes ``--data`` reads them: a held-out split,
    one simulated Pi's private share."""
    from model.manifest import write_atomic

    folder.mkdir(parents=True, exist_ok=True)
    sub = ds.subset(np.asarray(rows))
    for lab, lang in enumerate(ds.languages):
        names = [n for n, y in zip(sub.names, sub.labels, strict=True) if y == lab]
        if names:
            write_atomic(folder / f"{lang}.txt", ("\n".join(names) + "\n").encode())
    return folder


def read_language_file(path: Path) -> list[str]:
    """The non-empty lines of one language file, decoded strictly as UTF-8."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise UndecodableFile(
            f"{path}: byte {e.start} is not valid UTF-8 ({e.reason}); "
            "save the file as UTF-8 text with one surname per line"
        ) from e
    if "\x00" in text:
        raise UndecodableFile(
            f"{path}: contains NUL bytes, so it looks like a binary file, not a list of names; "
            "replace it with UTF-8 text, one surname per line"
        )
    return [line for line in text.splitlines() if line.strip()]


def load_names(data_dir: str | os.PathLike[str], min_languages: int = 2) -> NamesDataset:
    """Read every ``<Language>.txt`` under ``data_dir`` into distinct (name, language) pairs.

    Training a classifier from scratch needs two languages at least; a Pi in a fleet holds
    whatever its owner has, one language included (``min_languages=1``): its labels come from
    the fleet model's manifest, not from its own files.
    """
    root = Path(data_dir)
    if not root.exists():
        raise DataDirNotFound(
            f"names directory {root} does not exist; pass --data DIR or set {DATA_ENV}, "
            "or run `pifed data download`"
        )
    if not root.is_dir():
        raise DataDirNotFound(f"{root} is a file, not a directory of <Language>.txt files")
    files = sorted(p for p in root.glob("*.txt") if p.is_file())
    if not files:
        raise NoLanguageFiles(
            f"{root} holds no <Language>.txt files; point --data at the folder that contains "
            "Arabic.txt, Chinese.txt, ... (for the public data set that is data/names/)"
        )
    if len(files) < min_languages:
        raise TooFewLanguages(
            f"{root} holds only {files[0].name}; a language classifier needs at least two "
            "<Language>.txt files"
        )
    languages = tuple(p.stem for p in files)
    pairs: dict[tuple[str, int], None] = {}
    raw_counts: dict[str, int] = {}
    debris = 0
    for label, path in enumerate(files):
        lines = read_language_file(path)
        raw_counts[path.stem] = len(lines)
        kept = 0
        for line in lines:
            name = normalize_name(line)
            if not name or name in _DEBRIS:
                debris += 1
                continue
            pairs.setdefault((name, label), None)
            kept += 1
        if kept == 0:
            raise EmptyLanguageFile(
                f"{path} has no usable names; add one surname per line or remove the file"
            )
    names = tuple(n for n, _ in pairs)
    labels = np.fromiter((lab for _, lab in pairs), dtype=np.int32, count=len(pairs))
    return NamesDataset(languages, names, labels, raw_counts, debris)
