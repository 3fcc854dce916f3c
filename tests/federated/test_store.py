"""The coordinator's SQLite store: a real file, real transactions, crash-safety by construction."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from edge.secagg.identity import SigningKey
from federated.authority import enroll_signed
from federated.store import RevokedDevice, Store, StoreError, UnknownDevice, UnknownVersion


def test_enrollment_tokens_are_stored_hashed_and_checked(tmp_path: Path) -> None:
    store = Store(tmp_path / "fleet.db")
    authority = SigningKey.generate()
    token, _ = enroll_signed(store, "pi-kitchen", SigningKey.generate().public, authority)
    assert token.startswith("pfd_")  # never "-...", which argparse would read as an option
    assert store.authenticate(token).name == "pi-kitchen"
    raw = (tmp_path / "fleet.db").read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.glob("fleet.db-wal")
    )
    assert token.encode() not in raw  # only the sha256 is stored
    with pytest.raises(UnknownDevice):
        store.authenticate("not-a-token")
    store.revoke("pi-kitchen")
    with pytest.raises(RevokedDevice):
        store.authenticate(token)
    with pytest.raises(ValueError, match="already enrolled"):
        store.enroll("pi-kitchen")
    with pytest.raises(ValueError, match="letters, digits"):
        store.enroll("bad name; drop table")


def test_versions_blobs_gate_and_rollback(tmp_path: Path) -> None:
    store = Store(tmp_path / "fleet.db")
    v1 = store.add_version(b"w1", {"float": b"f1"}, "initial")
    store.rollback(v1, "initial deployment", force=True)
    r = store.start_round(v1, [1, 2])
    v2 = store.add_version(b"w2", {"float": b"f2"}, "candidate", parent=v1, round_id=r)
    store.judge_version(v2, True, "good", {"accuracy": 0.8})
    store.finish_round(r, True, "ok", new_version=v2, survivors=[1, 2])
    assert store.deployed().version == v2  # type: ignore[union-attr]
    assert store.get_blob(store.version(v2).artifacts["float"]) == b"f2"
    store.rollback(v1, "operator", force=True)
    assert store.deployed().version == v1  # type: ignore[union-attr]
    store.rollback(v2, "operator")  # promoted by the gate: no --force needed
    assert store.deployed().version == v2  # type: ignore[union-attr]
    v3 = store.add_version(b"w3", {}, "candidate", parent=v2)
    store.judge_version(v3, False, "worse", {"accuracy": 0.1})
    with pytest.raises(StoreError, match="versions the gate promoted: 2 "):
        store.rollback(v3, "no")
    with pytest.raises(UnknownVersion):
        store.version(99)


def test_a_corrupted_blob_is_detected(tmp_path: Path) -> None:
    store = Store(tmp_path / "fleet.db")
    digest = store.put_blob(b"weights")
    (store.blob_dir / digest).write_bytes(b"tampered")
    with pytest.raises(StoreError, match="corrupted"):
        store.get_blob(digest)
    with pytest.raises(StoreError, match="sha256"):
        store.get_blob("../../etc/passwd")


def test_not_a_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"my precious notes " * 100)
    with pytest.raises(StoreError, match="not a pifed database"):
        Store(path)
    assert path.read_bytes() == b"my precious notes " * 100


_CRASH = """
import os, sys
from federated.store import Store
s = Store(sys.argv[1])
v = s.add_version(b"w", {"float": b"f"}, "initial")
s.rollback(v, "init", force=True)
r = s.start_round(v, [1])
s.finish_round(r, True, "done", new_version=v)
r2 = s.start_round(v, [1, 2])
print(r2, flush=True)
os.kill(os.getpid(), 9)  # kill -9 mid-round
"""


@pytest.mark.slow
def test_kill_9_mid_round_keeps_completed_history_and_aborts_the_open_round(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    proc = subprocess.run([sys.executable, "-c", _CRASH, str(db)], capture_output=True, text=True)
    assert proc.returncode == -9
    open_round = int(proc.stdout.strip())
    store = Store(db)
    assert store.abort_unfinished_rounds("coordinator restarted") == [open_round]
    rounds = {r["id"]: r for r in store.rounds()}
    assert rounds[open_round]["status"] == "aborted"
    assert [r["status"] for r in rounds.values()].count("completed") == 1
    assert store.deployed() is not None and len(store.versions()) == 1
    with sqlite3.connect(db) as raw:  # the file itself is consistent
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert json.loads(json.dumps(store.rounds()))  # serialisable for reports
