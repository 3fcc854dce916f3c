"""The store's one connection, shared by the gRPC threads and the round thread, never lets one
thread's statement land inside another's transaction (a real SQLite file, real threads)."""

from __future__ import annotations

import threading
from pathlib import Path

from federated.serial_db import SerialConnection


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
