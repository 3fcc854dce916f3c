"""The store's files on disk: owner-only permissions, the schema check, blob checks at start.

Kept out of ``federated.store`` (the transactions) and ``federated.store_schema`` (the tables)
because none of this is a transaction: it is what must hold of the files before any runs.

Permissions: the database, its ``-wal``/``-shm`` files and the blob folder are created owner-only
(0600 / 0700). Found wider at start, they are *tightened* and a warning says so, rather than only
warned about: the coordinator is the only process that needs them, the database holds every
device's token hash and the fleet's model history, and a warning alone leaves them readable
until someone acts. A file this user cannot chmod (someone else's) is an error.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Iterable
from pathlib import Path

from federated.serial_db import SerialConnection

log = logging.getLogger("pifed.store")

FILE_MODE = 0o600
DIR_MODE = 0o700
# SQLite's own files beside the database (WAL mode).
SIDE_FILES = ("-wal", "-shm")


class StoreFileError(RuntimeError):
    """A store file has the wrong owner, type or content (``StoreError`` wraps it)."""


def create_private_file(path: Path) -> None:
    """Create an empty file readable by its owner only (SQLite then gives its -wal and -shm
    the same mode)."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, FILE_MODE)
    os.close(fd)


def create_private_dir(path: Path) -> None:
    """Create a folder only its owner can enter (the blobs)."""
    path.mkdir(mode=DIR_MODE, exist_ok=True)


def _tighten(path: Path, mode: int) -> None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_IMODE(st.st_mode) & 0o077 == 0:
        return
    try:
        os.chmod(path, mode)
    except PermissionError as e:
        raise StoreFileError(
            f"{path} is readable by others (mode {stat.S_IMODE(st.st_mode):o}) and this user "
            f"cannot change it: chmod {mode:o} {path} as its owner"
        ) from e
    log.warning(
        "%s was mode %o (readable by others); tightened to %o", path, stat.S_IMODE(st.st_mode), mode
    )


def secure_store_files(db: Path, blob_dir: Path) -> None:
    """Tighten the database, its -wal/-shm and the blob folder to owner-only (warning when
    they were wider)."""
    for p in (db, *(db.with_name(db.name + s) for s in SIDE_FILES)):
        _tighten(p, FILE_MODE)
    _tighten(blob_dir, DIR_MODE)


def check_tables(
    conn: sqlite3.Connection | SerialConnection, path: Path, expected: Iterable[str]
) -> None:
    """An existing file must be pifed's: every table present. Read-only: a wrong file is left
    exactly as it was (no table is created in someone else's database)."""
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
    missing = sorted(set(expected) - {r[0] for r in rows})
    if missing:
        raise StoreFileError(
            f"{path} is an SQLite database but not a pifed one (no table {', '.join(missing)}); "
            "pass the right --db, or move this file away to start a new fleet"
        )
