"""The store's one connection, shared by the gRPC threads and the round thread, never lets one
thread's statement land inside another's transaction (a real SQLite file, real threads)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from federated.serial_db import SerialConnection, StoreBusy


def test_transactions_and_statements_from_many_threads_do_not_interleave(tmp_path: Path) -> None:
    db = SerialConnection(str(tmp_path / "t.db"))
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
    errors: list[BaseException] = []
    per_thread = 200

    def transact(offset: int) -> None:
        try:
            for i in range(per_thread):
                with db.transaction() as conn:
                    conn.execute("INSERT INTO t (k, v) VALUES (?, 0)", (offset + i,))
                    # another thread's lone statement must not run between these two
                    conn.execute("UPDATE t SET v = 1 WHERE k = ?", (offset + i,))
        except BaseException as e:  # pragma: no cover - the failure being tested for
            errors.append(e)

    def read() -> None:
        try:
            for _ in range(per_thread):
                (n,) = db.execute("SELECT COUNT(*) FROM t WHERE v = 0").fetchone()
                assert n == 0, "a reader saw a half-done transaction"
        except BaseException as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=transact, args=(k * 10_000,)) for k in range(3)]
    threads += [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert db.execute("SELECT COUNT(*), SUM(v) FROM t").fetchone() == (
        3 * per_thread,
        3 * per_thread,
    )


def test_a_failed_transaction_rolls_back_and_the_connection_stays_usable(tmp_path: Path) -> None:
    db = SerialConnection(str(tmp_path / "t.db"))
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)")
    try:
        with db.transaction() as conn:
            conn.execute("INSERT INTO t VALUES (1)")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert db.execute("SELECT COUNT(*) FROM t").fetchone() == (0,)
    with db.transaction() as conn:
        conn.execute("INSERT INTO t VALUES (2)")
    assert db.execute("SELECT k FROM t").fetchall() == [(2,)]


def test_a_read_only_file_is_a_store_busy_that_says_so(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    rw = SerialConnection(str(path))
    rw.execute("CREATE TABLE t (v INTEGER)")
    rw.close()
    ro = SerialConnection(f"file:{path}?mode=ro", uri=True)  # as a user without write access
    with pytest.raises(StoreBusy, match="is read-only for this user") as e, ro.transaction() as db:
        db.execute("INSERT INTO t VALUES (1)")
    assert "nothing changed" in str(e.value) and "owns it" in str(e.value)
    assert ro.execute("SELECT COUNT(*) FROM t").fetchone() == (0,)  # still reads
    ro.close()


def test_a_lock_held_elsewhere_is_a_store_busy_and_the_connection_recovers(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    db = SerialConnection(str(path), timeout=0)  # fail at once rather than after a busy timeout
    db.execute("CREATE TABLE t (v INTEGER)")
    other = sqlite3.connect(path, isolation_level=None)  # another process's writer
    other.execute("BEGIN IMMEDIATE")
    busy = pytest.raises(StoreBusy, match="locked by another pifed process")
    with busy as e, db.transaction() as conn:
        conn.execute("INSERT INTO t VALUES (1)")
    assert "nothing changed; retry" in str(e.value)
    with pytest.raises(StoreBusy, match="locked"):
        db.execute("INSERT INTO t VALUES (2)")  # a lone write outside a transaction, too
    other.execute("COMMIT")
    other.close()
    with db.transaction() as conn:
        conn.execute("INSERT INTO t VALUES (3)")
    assert db.execute("SELECT v FROM t").fetchall() == [(3,)]
    db.close()
