"""The store's files on disk: owner-only permissions, the schema check, blob checks at start.

Kept out of ``federated.store`` (the transactions) and ``federated.store_schema`` (the tables)
because none of this is a transaction: it is what must hold of the files before any runs.

Permissions: the database, its ``-wal``/``-shm`` files and the blob folder are created owner-only
(0600 / 0700). Found wider at start, they are *tightened* and a warning says so, rather than only
warned about: the coordinator is the only process that needs them, the database holds every
device's token hash and the fleet's model history, and a warning alone leaves them readable
until someone acts. A file this user cannot chmod (someone else's) is an error. SQLite gives a
new -wal/-shm the database's own mode, so a database once chmod 400 leaves a read-only -shm
behind that keeps every later write failing after the database is writable again: the side
files are given back u+rw (before the connection opens them).

A database that cannot be opened at all is explained by :func:`open_problem` (a missing folder,
a permission this user lacks) rather than called a foreign file, so nobody moves a good fleet.db.
"""

from __future__ import annotations

import errno
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


def _side_files(db: Path) -> tuple[Path, ...]:
    return tuple(db.with_name(db.name + s) for s in SIDE_FILES)


def writable_side_files(db: Path) -> None:
    """Give the database's -wal/-shm back u+rw (exactly 0600) when SQLite left them read-only
    and the database itself is u+rw again: a -shm made while the database was chmod 400 stays
    400 and refuses every write after."""
    try:
        if stat.S_IMODE(db.stat().st_mode) & 0o600 != 0o600:
            return  # a read-only database: its side files follow it, and writes are refused
    except FileNotFoundError:
        return
    for p in _side_files(db):
        try:
            st = p.lstat()
        except FileNotFoundError:
            continue
        mode = stat.S_IMODE(st.st_mode)
        if not stat.S_ISREG(st.st_mode) or mode & 0o600 == 0o600:
            continue
        try:
            os.chmod(p, FILE_MODE)
        except PermissionError as e:
            raise StoreFileError(
                f"{p} is mode {mode:o} (not writable by its owner) and this user cannot change "
                f"it: chmod {FILE_MODE:o} {p} as its owner, or run as the coordinator's user"
            ) from e
        log.warning("%s was mode %o (SQLite cannot write it); set to %o", p, mode, FILE_MODE)


def secure_store_files(db: Path, blob_dir: Path) -> None:
    """Tighten the database, its -wal/-shm and the blob folder to owner-only (warning when
    they were wider), and keep the -wal/-shm writable by their owner."""
    writable_side_files(db)
    for p in (db, *_side_files(db)):
        _tighten(p, FILE_MODE)
    _tighten(blob_dir, DIR_MODE)


def open_problem(db: Path, e: BaseException) -> str | None:
    """Why ``db`` cannot be opened when the cause is its folder or this user's access rather
    than its content, with the fix; None when the file itself is at fault (not a database)."""
    folder = db.parent
    if not folder.exists():
        return f"cannot open {db}: folder {folder} does not exist (check --db, or create it)"
    if not folder.is_dir():
        return f"cannot open {db}: {folder} is not a folder (check --db)"
    if db.exists() and not db.is_file():
        return f"cannot open {db}: it is not a file (check --db)"
    if isinstance(e, sqlite3.DatabaseError) and "unable to open" not in str(e):
        return None  # SQLite read the file and found it wrong: its content is at fault
    denied = isinstance(e, PermissionError) or getattr(e, "errno", None) in (
        errno.EACCES,
        errno.EPERM,
    )
    if db.exists() and (denied or not os.access(db, os.R_OK | os.W_OK)):
        return (
            f"cannot open {db}: permission denied for this user (run pifed as the coordinator's "
            f"user, the owner of {db})"
        )
    if denied or not os.access(folder, os.W_OK | os.X_OK):
        return (
            f"cannot open {db}: this user cannot write its folder {folder} (SQLite keeps "
            f"{db.name}, {db.name}-wal and {db.name}-shm there); run pifed as the coordinator's "
            "user"
        )
    return None


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
