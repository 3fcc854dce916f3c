"""The store's files: owner-only, never created by a read, refused untouched when wrong.

Real SQLite files; commands run in-process through ``pifed.cli.main``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from fleet_fakes import make_fleet_dir, seeded_store

from edge.secagg.identity import SigningKey
from federated.authority import init_authority
from federated.store import MissingStore, Store
from federated.store_files import create_private_file, writable_side_files
from pifed import cli


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _cli(*argv: str) -> tuple[int, str]:
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = cli.main(list(argv))
    return code, err.getvalue() + out.getvalue()


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_database_side_files_and_blobs_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a usual umask: without care, files would be 0644
    try:
        store = Store(tmp_path / "fleet.db")
        store.enroll("pi-1")
        digest = store.put_blob(b"weights")
        for suffix in ("", "-wal", "-shm"):
            assert _mode(tmp_path / f"fleet.db{suffix}") == 0o600, suffix
        assert _mode(store.blob_dir) == 0o700
        assert _mode(store.blob_dir / digest) == 0o600
        store.close()
    finally:
        os.umask(old)


def test_wider_files_are_tightened_at_start_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    Store(tmp_path / "fleet.db").close()
    os.chmod(tmp_path / "fleet.db", 0o644)
    os.chmod(tmp_path / "fleet.db.blobs", 0o755)
    with caplog.at_level(logging.WARNING, logger="pifed.store"):
        Store(tmp_path / "fleet.db").close()
    assert _mode(tmp_path / "fleet.db") == 0o600
    assert _mode(tmp_path / "fleet.db.blobs") == 0o700
    assert "was mode 644 (readable by others); tightened to 600" in caplog.text


@pytest.mark.parametrize(
    "command", [["devices"], ["models"], ["models", "--json"], ["rollback", "1"]]
)
def test_commands_that_only_read_never_create_a_database(tmp_path: Path, command: list) -> None:
    db = tmp_path / "typo.db"
    code, msg = _cli(command[0], "--db", str(db), *command[1:])
    assert code == 2
    assert f"no pifed database at {db}" in msg and "Traceback" not in msg
    assert list(tmp_path.iterdir()) == []  # no file, no blob folder
    with pytest.raises(MissingStore):
        Store(db, create=False)


def _foreign_sqlite(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE notes (body TEXT)")
    con.execute("INSERT INTO notes VALUES ('my precious notes')")
    con.commit()
    con.close()


def _wrong_schema(path: Path) -> None:
    Store(path).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value='99' WHERE key='schema'")
    con.commit()
    con.close()


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: p.write_bytes(b"not sqlite at all " * 64), "is not a pifed database"),
        (_foreign_sqlite, "is an SQLite database but not a pifed one"),
        (_wrong_schema, "has schema 99, this pifed uses 3"),
    ],
)
@pytest.mark.parametrize("command", ["devices", "models", "enroll", "server"])
def test_a_corrupt_or_foreign_database_is_exit_2_and_left_untouched(
    tmp_path: Path, make: object, says: str, command: str
) -> None:
    db = tmp_path / "fleet.db"
    make(db)  # type: ignore[operator]
    before = {p.name: _digest(p) for p in tmp_path.iterdir() if p.is_file()}
    args = {
        "devices": ["devices", "--db", str(db)],
        "models": ["models", "--db", str(db)],
        "enroll": [
            *("enroll", "--db", str(db), "pi-1", "--public-key", "ab" * 32),
            *("--authority-key", str(tmp_path / "no-such.key")),
        ],
        "server": ["server", "--db", str(db), "--insecure", "--listen", "127.0.0.1:0"],
    }[command]
    code, msg = _cli(*args)
    assert code == 2, msg
    assert says in msg and "Traceback" not in msg
    assert {p.name: _digest(p) for p in tmp_path.iterdir() if p.is_file()} == before
    assert not (tmp_path / "fleet.db.model").exists()  # the server built no model first


@pytest.mark.parametrize("damage", ["missing", "altered"])
def test_a_damaged_blob_of_the_deployed_version_stops_the_server_with_the_fix(
    tmp_path: Path, damage: str
) -> None:
    fleet_dir = make_fleet_dir(tmp_path)
    store, _ = seeded_store(fleet_dir, ["a"])
    v1 = store.initial_version()
    assert v1 is not None
    r = store.start_round(v1.version, [1])
    v2 = store.add_version(
        b"w2", {"model_float.tflite": b"f2", "manifest.json": b"m"}, "candidate", 1, r
    )
    store.judge_version(v2, True, "good", {"accuracy": 0.9})
    store.start_round(v2, [1])  # a round left running: a start that goes ahead aborts it
    blob = store.blob_dir / store.version(v2).artifacts["model_float.tflite"]
    store.close()
    if damage == "missing":
        blob.unlink()
    else:
        os.chmod(blob, 0o600)
        blob.write_bytes(b"tampered")
    code, msg = _cli(
        "server", "--db", str(fleet_dir / "fleet.db"), "--insecure", "--listen", "127.0.0.1:0",
        "--model", str(fleet_dir / "model"),
    )  # fmt: skip
    assert code == 2, msg
    assert "Traceback" not in msg
    assert f"the deployed version {v2}'s model_float.tflite" in msg
    assert ("missing" if damage == "missing" else "corrupted") in msg
    assert "pifed rollback" in msg and "nothing was changed" in msg
    store = Store(fleet_dir / "fleet.db")
    assert [r["status"] for r in store.rounds()] == ["running", "running"]  # not aborted
    store.close()


@pytest.mark.parametrize("command", ["enroll", "server"])
def test_a_missing_folder_is_named_not_called_a_foreign_database(
    tmp_path: Path, command: str
) -> None:
    # Both commands create a missing fleet file (an enrollment does, a --revoke does not).
    authority = init_authority(tmp_path / "authority")
    before = sorted(tmp_path.iterdir())
    db = tmp_path / "no-such-folder" / "fleet.db"
    key = SigningKey.generate().public.hex()
    args = {
        "enroll": [
            "enroll",
            "--db",
            str(db),
            "pi-1",
            "--public-key",
            key,
            "--authority-key",
            str(authority.key),
        ],
        "server": ["server", "--db", str(db), "--insecure", "--listen", "127.0.0.1:0"],
    }[command]
    code, msg = _cli(*args)
    assert code == 2, msg
    assert f"cannot open {db}: folder {db.parent} does not exist" in msg
    assert "not a pifed database" not in msg and "move it away" not in msg
    assert "Traceback" not in msg and sorted(tmp_path.iterdir()) == before


def test_a_read_only_side_file_left_by_sqlite_is_made_writable_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "fleet.db"
    Store(db).close()
    # What a read while fleet.db was chmod 400 leaves: SQLite gave its -wal/-shm that mode.
    for suffix in ("-wal", "-shm"):
        create_private_file(tmp_path / f"fleet.db{suffix}")
        os.chmod(tmp_path / f"fleet.db{suffix}", 0o400)
    with caplog.at_level(logging.WARNING, logger="pifed.store"):
        store = Store(db)
    store.enroll("pi-1")
    store.close()
    for suffix in ("-wal", "-shm"):
        side = tmp_path / f"fleet.db{suffix}"
        assert not side.exists() or _mode(side) == 0o600, suffix
    assert "fleet.db-shm was mode 400 (SQLite cannot write it); set to 600" in caplog.text


def test_a_database_still_read_only_keeps_its_side_files_as_they_are(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    Store(db).close()
    os.chmod(db, 0o400)
    shm = tmp_path / "fleet.db-shm"
    create_private_file(shm)
    os.chmod(shm, 0o400)
    writable_side_files(db)
    assert _mode(shm) == 0o400  # they follow the database; its writes are refused with the fix


def test_enroll_while_another_process_holds_the_write_lock_is_exit_2(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    store = Store(db)
    store.enroll("pi-1")
    store.close()
    other = sqlite3.connect(db, isolation_level=None)  # a running coordinator mid-transaction
    other.execute("BEGIN IMMEDIATE")
    try:
        code, msg = _cli("enroll", "--db", str(db), "--revoke", "pi-1")  # waits the busy timeout
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert code == 2, msg
    assert f"{db} is locked by another pifed process (a running `pifed server`" in msg
    assert "nothing changed; retry" in msg and "Traceback" not in msg
    store = Store(db)
    assert store.device("pi-1").status == "pending"  # not revoked: nothing changed
    store.close()
