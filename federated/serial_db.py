"""One SQLite connection shared by the coordinator's threads, used by one thread at a time.

The gRPC threads (device log-ins, heartbeats) and the round thread all write through the
store's single connection. A connection is not a safe meeting point for threads: one thread's
``execute`` could land inside another's ``BEGIN IMMEDIATE ... COMMIT`` (and be rolled back with
it, or fail with "cannot start a transaction within a transaction"), and a cursor fetched after
another thread executed may read that thread's rows. Python 3.13's sqlite3 showed the latter under
emulated Trixie as a spurious "unknown device token". So every statement runs and is fetched
whole under one re-entrant lock, and a transaction holds that lock from BEGIN to COMMIT.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any


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
        # Each execute prepares its own statement: nothing cached is shared between calls.
        self._db = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, cached_statements=0, **kwargs
        )

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        """Run one statement and fetch its rows before another thread may run one."""
        with self._lock:
            cur = self._db.execute(sql, params)
            return Rows(cur.fetchall(), cur.lastrowid, cur.rowcount)

    def executescript(self, script: str) -> None:
        """Run a script (the schema) under the lock."""
        with self._lock:
            self._db.executescript(script)

    @contextmanager
    def transaction(self) -> Iterator[SerialConnection]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any exception), holding the lock throughout."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()
