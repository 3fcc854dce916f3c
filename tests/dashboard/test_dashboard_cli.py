"""The dashboard's command-line wiring: `pifed server --dashboard/--operator-token` checks its
flags before a model is built or a database opened (in-process, fast lane); `pifed dashboard
--db` serves a store read-only over real HTTP (a subprocess: slow lane)."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from store_fill import fill_store

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
