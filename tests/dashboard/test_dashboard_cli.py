"""The dashboard's command-line wiring: `pifed server --dashboard/--operator-token` checks its
flags before a model is built or a database opened (in-process, fast lane); `pifed dashboard
--db` refuses what it cannot serve (a damaged or mismatched certificate pair, a database this
user cannot read, a newer schema) with exit 2 before serving (fast lane), and serves a store
read-only over real HTTP (a subprocess: slow lane)."""

from __future__ import annotations

import http.client
import json
import logging
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from store_fill import fill_store
from tests_support import main_as_another_user

from federated.certs import make_certs
from federated.store import Store, StoreError
from federated.store_views import FleetViews
from pifed.cli import main


def _server(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "server",
        "--db",
        str(tmp_path / "fleet.db"),
        "--insecure",
        "--listen",
        "127.0.0.1:0",
        *extra,
    ]


@pytest.fixture
def pifed_log_restored():  # type: ignore[no-untyped-def]
    """`pifed server` points the pifed logger at this test's captured stderr: undo that."""
    root = logging.getLogger("pifed")
    handlers, level, propagate = list(root.handlers), root.level, root.propagate
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    root.propagate = propagate


def test_server_dashboard_flags_are_checked_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pifed_log_restored: None
) -> None:
    token = tmp_path / "op"
    token.write_text("x" * 40)
    token.chmod(0o644)
    assert main(_server(tmp_path, "--operator-token", str(token))) == 2
    assert "--operator-token needs --dashboard" in capsys.readouterr().err
    assert (
        main(_server(tmp_path, "--dashboard", "127.0.0.1:0", "--operator-token", str(token))) == 2
    )
    assert "chmod 600" in capsys.readouterr().err
    assert main(_server(tmp_path, "--dashboard", "0.0.0.0:8080")) == 2
    assert "--certs" in capsys.readouterr().err
    assert main(_server(tmp_path, "--dashboard", "localhost:http")) == 2
    assert "HOST:PORT" in capsys.readouterr().err
    assert not (tmp_path / "fleet.db").exists()  # refused before the database was made
    assert not (tmp_path / "fleet.db.model").exists()  # and before a model was built


def _bad_pairs(tmp_path: Path) -> dict[str, Path]:
    """Certificate folders `pifed certs` did not make as they are: garbage, and a key of
    another fleet beside this fleet's certificate."""
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "server.pem").write_bytes(os.urandom(200))
    (garbage / "server.key").write_bytes(os.urandom(200))
    mine, other = make_certs(tmp_path / "mine"), make_certs(tmp_path / "other")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(mine.server_cert, mixed / "server.pem")
    shutil.copy(other.server_key, mixed / "server.key")
    return {"is not PEM": garbage, "is not the certificate's": mixed}


def test_a_damaged_or_mismatched_certificate_pair_is_refused_before_serving(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pifed_log_restored: None
) -> None:
    db = tmp_path / "fleet.db"
    fill_store(db, devices=2, rounds=1)
    for why, certs in _bad_pairs(tmp_path).items():
        argv = ["dashboard", "--db", str(db), "--dashboard", "0.0.0.0:0", "--certs", str(certs)]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"{certs}/server.pem and server.key are not a matching PEM pair" in err, err
        assert why in err and "make them with `pifed certs`" in err
        assert "Traceback" not in err and "did not start" not in err
        fresh = tmp_path / f"server-{certs.name}.db"
        served = ["--dashboard", "0.0.0.0:0", "--certs", str(certs)]
        assert main(["server", "--db", str(fresh), "--listen", "127.0.0.1:0", *served]) == 2
        err = capsys.readouterr().err
        assert "not a matching PEM pair" in err and "Traceback" not in err, err
        assert not fresh.exists()  # refused before the database was made


def test_a_newer_schema_is_refused_with_the_stores_message(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    fill_store(db, devices=2, rounds=1)
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value='99' WHERE key='schema'")
    con.commit()
    con.close()
    with pytest.raises(StoreError) as by_store:
        Store(db)
    with pytest.raises(StoreError) as by_views:
        FleetViews(db)
    assert str(by_views.value) == str(by_store.value)
    assert "has schema 99, this pifed uses 3; use the matching pifed version" in str(by_views.value)


def test_a_read_only_folder_is_named_with_the_fix(
    tmp_path: Path, world_readable_dir: Path, pifed_log_restored: None
) -> None:
    fill_store(tmp_path / "fleet.db", devices=2, rounds=1)
    db = world_readable_dir / "fleet.db"
    shutil.copy(tmp_path / "fleet.db", db)  # a WAL file with no -shm beside it yet
    db.chmod(0o444)
    world_readable_dir.chmod(0o555)
    rc, err = main_as_another_user(["dashboard", "--db", str(db), "--dashboard", "127.0.0.1:0"])
    assert rc == 2, err
    assert f"{db} (or its folder {world_readable_dir}) is read-only for this user" in err, err
    assert f"create or write {db}-shm" in err
    assert "run this as the coordinator's user" in err and "writable folder" in err
    assert "not a readable pifed database" not in err and "Traceback" not in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow  # a subprocess
def test_pifed_dashboard_serves_a_stopped_fleet_read_only(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    fill_store(db, devices=3, rounds=4)
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pifed",
            "dashboard",
            "--db",
            str(db),
            "--dashboard",
            f"127.0.0.1:{port}",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/fleet").read()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "pifed dashboard never answered"
                time.sleep(0.2)
        fleet = json.loads(body)
        assert [d["name"] for d in fleet["devices"]] == ["pi-00", "pi-01", "pi-02"]
        assert fleet["coordinator_running"] is False
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/actions/rollback", data=b"version=2", method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req)
        assert e.value.code in (404, 405)
    finally:
        proc.terminate()
        proc.wait(10)
    bad = subprocess.run(
        [sys.executable, "-m", "pifed", "dashboard", "--db", str(db), "--dashboard", "0.0.0.0:0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "--certs" in bad.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "pifed", "dashboard", "--db", str(tmp_path / "nope.db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and "no pifed database" in missing.stderr


def test_with_certificates_it_serves_https_that_the_fleet_ca_verifies(tmp_path: Path) -> None:
    import ssl

    from federated.certs import make_certs
    from federated.dashboard.wiring import start_dashboard

    db = tmp_path / "fleet.db"
    fill_store(db, devices=2, rounds=1)
    paths = make_certs(tmp_path / "certs")
    dash = start_dashboard(db, "127.0.0.1:0", paths.ca_cert.parent)
    try:
        assert dash.url.startswith("https://127.0.0.1:")
        ctx = ssl.create_default_context(cafile=str(paths.ca_cert))
        body = urllib.request.urlopen(dash.url + "api/devices", context=ctx).read()
        assert [d["name"] for d in json.loads(body)["devices"]] == ["pi-00", "pi-01"]
        with pytest.raises((OSError, http.client.HTTPException)):  # no plain HTTP there
            urllib.request.urlopen(dash.url.replace("https", "http") + "api/devices", timeout=5)
    finally:
        dash.close()
