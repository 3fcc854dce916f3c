"""A busy Pi heartbeats; against a coordinator without heartbeats it stops after one try."""

from __future__ import annotations

import time
from typing import Any

from edge.heartbeat import Beating, HeartbeatSupport
from edge.transport import TransportError


class FakeChannel:
    def __init__(self, fail: str | None = None) -> None:
        self.beats: list[dict[str, Any]] = []
        self.fail = fail

    def heartbeat(self, header: dict[str, Any], timeout: float = 10) -> None:
        self.beats.append(header)
        if self.fail:
            raise TransportError(f"Heartbeat: {self.fail}", self.fail)


def test_a_busy_task_heartbeats_until_it_ends() -> None:
    ch, support = FakeChannel(), HeartbeatSupport()
    with Beating(ch, "t1", 0.02, support) as b:  # type: ignore[arg-type]
        time.sleep(0.2)
    n = len(ch.beats)
    assert n >= 3 and b.sent == n
    assert ch.beats[0] == {"kind": "heartbeat", "task": "t1"}
    time.sleep(0.1)
    assert len(ch.beats) == n  # stopped with the task


def test_a_coordinator_without_heartbeats_is_asked_once() -> None:
    ch, support = FakeChannel("UNIMPLEMENTED"), HeartbeatSupport()
    with Beating(ch, "t1", 0.02, support):  # type: ignore[arg-type]
        time.sleep(0.2)
    assert len(ch.beats) == 1 and not support.supported
    with Beating(ch, "t2", 0.02, support):  # type: ignore[arg-type]
        time.sleep(0.1)
    assert len(ch.beats) == 1


def test_an_unreachable_coordinator_does_not_stop_the_beat() -> None:
    ch, support = FakeChannel("UNAVAILABLE"), HeartbeatSupport()
    with Beating(ch, "t1", 0.02, support):  # type: ignore[arg-type]
        time.sleep(0.2)
    assert len(ch.beats) >= 3 and support.supported


def test_the_first_beat_goes_at_once() -> None:
    # Until a Pi has heartbeated the coordinator judges it by the stage's deadline only, so a
    # Pi killed in the first seconds of its first task held its round until that deadline
    # (caught by tests/integration/test_fleet_drills.py).
    ch, support = FakeChannel(), HeartbeatSupport()
    with Beating(ch, "t1", 30.0, support) as b:  # type: ignore[arg-type]
        deadline = time.monotonic() + 2
        while not ch.beats and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(ch.beats) == 1 and b.sent == 1
