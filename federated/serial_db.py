"""One SQLite connection shared by the coordinator's threads, used by one thread at a time.

The gRPC threads (device log-ins, heartbeats) and the round thread all write through the
store's single connection. A connection is not a safe meeting point for threads: one thread's
``execute`` could land inside another's ``BEGIN IMMEDIATE ... COMMIT`` (and be rolled back with
it, or fail with "cannot start a transaction within a transaction"), and a cursor fetched after
another thread executed may read that thread's rows. Python 3.13's sqlite3 showed the latter under
emulated Trixie as a spurious "unknown device token". So every statement runs and is fetched
whole under one re-entrant lock, and a transaction holds that lock from BEGIN to COMMIT.

A write refused because the file is read-only for this user, or locked by another process past
the busy timeout, is a :class:`StoreBusy` (a ``StoreError``) naming the file and the fix; the
transaction is rolled back, so nothing changed.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from federated.store_records import StoreError


class StoreBusy(StoreError):
    """A write was refused: the database is read-only for this user or locked by another process."""


def _refused_write(path: str, e: sqlite3.OperationalError) -> StoreBusy | None:
    """The operator's version of SQLite's "readonly" / "locked" refusals, or None for others."""
    text = str(e).lower()
    if "readonly" in text:
        return StoreBusy(
            f"{path} is read-only for this user ({e}); nothing changed. Run pifed as the user "
            f"that owns it (the coordinator's), or give that user write access to {path}, its "
            "-wal and -shm files and its folder, then retry"
        )
    if "locked" in text:
        return StoreBusy(
            f"{path} is locked by another pifed process (a running `pifed server`, or another "
            "command still writing?); nothing changed; retry when it is done"
        )
    return None


class Rows:
    """A statement's result, fetched while the lock was held."""

    def __init__(self, rows: list[Any], lastrowid: int | None, rowcount: int) -> None:
        self._rows = rows
        self.lastrowid = lastrowid
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        """The first row, or None (as sqlite3's cursor)."""
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        """Every row."""
        return list(self._rows)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


class SerialConnection:
    """A sqlite3 connection whose statements and transactions never interleave across threads."""

    def __init__(self, path: str, **kwargs: Any) -> None:
        self._lock = threading.RLock()
        self.path = path
        # Each execute prepares its own statement: nothing cached is shared between calls.
        self._db = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, cached_statements=0, **kwargs
        )

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        """Run one statement and fetch its rows before another thread may run one."""
        with self._lock, self._refusals():
            cur = self._db.execute(sql, params)
            return Rows(cur.fetchall(), cur.lastrowid, cur.rowcount)

    def executescript(self, script: str) -> None:
        """Run a script (the schema) under the lock."""
        with self._lock, self._refusals():
            self._db.executescript(script)

    @contextmanager
    def transaction(self) -> Iterator[SerialConnection]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any exception), holding the lock throughout."""
        with self._lock:
            with self._refusals():
                self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self
                with self._refusals():
                    self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    @contextmanager
    def _refusals(self) -> Iterator[None]:
        """Turn SQLite's read-only and locked refusals into a StoreBusy that says what to do."""
        try:
            yield
        except sqlite3.OperationalError as e:
            refused = _refused_write(self.path, e)
            if refused is None:
                raise
            raise refused from e

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()
