"""The coordinator's log: stderr only, a time on every line, a short configuration summary,
JSON lines on request, and "waiting" at a human pace naming who is missing.

`pifed server` runs in-process on a real SQLite file whose rounds are already done, so it
starts, logs, finds nothing to run and exits (no TensorFlow, no processes).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet_fakes import (
    FakePi,
    fake_cfg,
    fake_coordinator,
    make_fleet_dir,
    pis_running,
    seeded_store,
)

from pifed import cli

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARNING|ERROR) ")


@pytest.fixture()
def done_fleet(tmp_path: Path) -> Iterator[Path]:
    fleet_dir = make_fleet_dir(tmp_path)
    store, _ = seeded_store(fleet_dir, ["a", "b"])
    v1 = store.initial_version()
    assert v1 is not None
    store.finish_round(store.start_round(v1.version, [1, 2]), True, "ok")
    store.close()
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield fleet_dir
    for s, h in saved.items():
        signal.signal(s, h)


def _server(fleet_dir: Path, *extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    argv = ["server", "--db", str(fleet_dir / "fleet.db"), "--insecure", "--listen"]
    argv += ["127.0.0.1:0", "--model", str(fleet_dir / "model"), "--rounds", "1"]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([*argv, "--exit-after-rounds", *extra])
    return code, out.getvalue(), err.getvalue()


def test_server_logs_to_stderr_with_a_time_on_every_line(done_fleet: Path) -> None:
    code, out, err = _server(done_fleet)
    assert code == 0, err
    assert out == ""  # one stream
    lines = err.splitlines()
    assert lines and all(STAMP.match(line) for line in lines), err
    assert any("configuration: 1 completed round(s) in all, 2+ devices" in x for x in lines)
    assert "FleetConfig(" not in err and "RoundSettings(" not in err
    assert any("nothing to run" in x for x in lines)
    assert any("listening on port" in x for x in lines)


def test_log_json_is_one_object_a_line(done_fleet: Path) -> None:
    code, out, err = _server(done_fleet, "--log-json")
    assert code == 0 and out == ""
    records = [json.loads(line) for line in err.splitlines()]
    assert records and all({"ts", "level", "logger", "msg"} <= r.keys() for r in records)
    plan = next(r for r in records if r.get("event") == "rounds_plan")
    assert (plan["completed"], plan["target"]) == (1, 1)


def test_waiting_is_reported_at_a_human_pace_naming_the_missing(tmp_path: Path) -> None:
    fleet_dir = make_fleet_dir(tmp_path)
    store, devices = seeded_store(fleet_dir, ["a", "b", "c"])
    events: list[dict] = []
    cfg = fake_cfg(wait_devices_timeout=3.0)  # needs 3; only a and b come
    coord = fake_coordinator(store, cfg, on_event=events.append)
    pis = [FakePi(coord, d, 0.1) for d in devices[:2]]
    t = time.monotonic()
    with pis_running(coord, pis):
        summary = coord.run_round()
    assert not summary["ok"] and time.monotonic() - t >= 3.0
    waiting = [e for e in events if e["event"] == "waiting"]
    # Once at first, then only when who is connected changes (a, then b): not 5 a second.
    assert 1 <= len(waiting) <= 3, waiting
    assert waiting[-1]["missing"] == ["c"] and waiting[-1]["needed"] == 3
    from pifed.oplog import describe

    assert describe(waiting[-1]) == "waiting for devices: 2 of 3 connected; not connected: c"
    store.close()
