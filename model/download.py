"""Fetch the public names data set (the char-RNN tutorial's data.zip) and verify it by content.

The archive's bytes are not stable (line endings, a final newline), so the download is verified
by what it parses to: 18 languages, 20,074 non-empty lines, and the per-language counts below.
Nothing is written to the cache until that check passes.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from model.dataset import DataError, read_language_file

PUBLIC_URL = "https://download.pytorch.org/tutorial/data.zip"
EXPECTED_LINES = {
    "Arabic": 2000,
    "Chinese": 268,
    "Czech": 519,
    "Dutch": 297,
    "English": 3668,
    "French": 277,
    "German": 724,
    "Greek": 203,
    "Irish": 232,
    "Italian": 709,
    "Japanese": 991,
    "Korean": 94,
    "Polish": 139,
    "Portuguese": 74,
    "Russian": 9408,
    "Scottish": 100,
    "Spanish": 298,
    "Vietnamese": 73,
}
MAX_ARCHIVE_BYTES = 64 << 20


class DownloadError(DataError):
    """The data set could not be fetched, or what was fetched is not the expected data set."""


def verify_names_dir(directory: Path) -> dict[str, int]:
    """Raise DownloadError unless ``directory`` parses to exactly the public data set."""
    counts = {p.stem: len(read_language_file(p)) for p in sorted(directory.glob("*.txt"))}
    if counts != EXPECTED_LINES:
        diff = {
            k: (counts.get(k), EXPECTED_LINES.get(k))
            for k in sorted(set(counts) | set(EXPECTED_LINES))
            if counts.get(k) != EXPECTED_LINES.get(k)
        }
        raise DownloadError(
            f"downloaded data does not match the public names data set "
            f"(language: (got, expected) lines) {diff}; check --url"
        )
    return counts


def download_names(dest: Path, url: str = PUBLIC_URL, timeout: float = 60.0) -> dict[str, int]:
    """Download ``url``, unpack its ``data/names/*.txt`` into ``dest`` after verifying them."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            blob = resp.read(MAX_ARCHIVE_BYTES + 1)
    except OSError as e:
        raise DownloadError(
            f"could not download {url}: {e}; this machine may be offline: copy the names folder "
            "from elsewhere and pass --data DIR"
        ) from e
    if len(blob) > MAX_ARCHIVE_BYTES:
        raise DownloadError(f"{url} is larger than {MAX_ARCHIVE_BYTES >> 20} MiB; not the data set")
    try:
        archive = zipfile.ZipFile(io.BytesIO(blob))
    except zipfile.BadZipFile as e:
        raise DownloadError(f"{url} did not return a zip archive ({e})") from e
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        staging = Path(tmp) / "names"
        staging.mkdir()
        for info in archive.infolist():
            parts = Path(info.filename).parts
            # Only data/names/<Language>.txt; never trust archive paths (no ../ escapes).
            if len(parts) == 3 and parts[:2] == ("data", "names") and parts[2].endswith(".txt"):
                (staging / parts[2]).write_bytes(archive.read(info))
        counts = verify_names_dir(staging)
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
    return counts
