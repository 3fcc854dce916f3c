"""Liveness on the coordinator side: a Pi that goes silent is dropped from its stage at once,
a round that can no longer finish aborts at once, and the next round starts with who is left.

In-process fake devices (tests/fleet_fakes.py): a "silent" Pi answers up to some task and then
stops polling, as a Pi that lost power between tasks. Stage deadlines are long (10-600 s), so a
round that waited them out would fail these tests' time bounds.
"""

from __future__ import annotations

import time
from pathlib import Path

from fleet_fakes import FakePi, fake_cfg, fake_coordinator, pis_running, seeded_store

from edge.secagg import UnmaskRequest, decode_message
from edge.tasks import Reply, SecAggTask, TrainTask
from federated.coordinator import Coordinator
from federated.store import Device

LIVE = 1.0  # the live window of these tests (poll wait 0.2 s)


class SilentAfter(FakePi):
    """Answers tasks until ``after`` has been answered, then never polls again."""

    def __init__(self, coord: Coordinator, device: Device, after: str) -> None:
        super().__init__(coord, device, 0.1)
        self.after = after

    def answer(self, task: object, payload: bytes) -> Reply:
        reply = super().answer(task, payload)
        if self.after == "train" and isinstance(task, TrainTask):
            self.stop.set()
        unmask = isinstance(task, SecAggTask) and isinstance(decode_message(payload), UnmaskRequest)
        if self.after == "unmask" and unmask:
            self.stop.set()
        return reply


def test_a_round_that_cannot_finish_aborts_at_once_and_the_next_runs_with_who_is_left(
    fleet_dir: Path,
) -> None:
    """n = 3 means t = 3: one Pi gone after training makes the session impossible. Its
    AdvertiseKeys deadline is the 600 s training timeout; the round must not wait for it."""
    store, devices = seeded_store(fleet_dir, ["a", "b", "c"])
    cfg = fake_cfg(threshold=None, min_devices=2, live_window=LIVE, rounds=1)
    coord = fake_coordinator(store, cfg)
    pis = [FakePi(coord, devices[0], 0.1), FakePi(coord, devices[1], 0.1)]
    pis.append(SilentAfter(coord, devices[2], "train"))
    with pis_running(coord, pis, connected=True):
        t = time.monotonic()
        summaries = coord.run()
    took = time.monotonic() - t
    assert [s["ok"] for s in summaries] == [False, True], summaries
    assert "only 2 device(s) left, threshold is 3" in summaries[0]["reason"]
    assert summaries[1]["devices"] == 2 and summaries[1]["survivors"] == 2
    assert took < LIVE + 8, took
    rounds = store.rounds()
    assert [r["status"] for r in rounds] == ["aborted", "completed"]
    assert rounds[1]["participants"] == [devices[0].id, devices[1].id]
    store.close()


def test_the_evaluate_stage_stops_waiting_for_a_pi_that_is_gone(fleet_dir: Path) -> None:
    store, devices = seeded_store(fleet_dir, ["a", "b", "c"])
    cfg = fake_cfg(live_window=LIVE, eval_timeout=60.0)
    coord = fake_coordinator(store, cfg)
    pis = [FakePi(coord, devices[0], 0.1), FakePi(coord, devices[1], 0.1)]
    pis.append(SilentAfter(coord, devices[2], "unmask"))
    with pis_running(coord, pis, connected=True):
        t = time.monotonic()
        summary = coord.run_round()
    assert summary["ok"], summary
    assert summary["survivors"] == 3  # it took part in the whole secure aggregation
    assert summary["device_reports"] == 2  # and was not waited for in evaluation
    assert time.monotonic() - t < LIVE + 8  # the evaluation timeout is 60 s
    store.close()


def test_a_pi_busy_on_a_delivered_task_is_not_judged_by_silence(fleet_dir: Path) -> None:
    """A Pi trains without polling: longer than the live window is not "gone"."""
    store, devices = seeded_store(fleet_dir, ["a", "b", "c"])
    cfg = fake_cfg(live_window=LIVE)

    def slow(pi: FakePi, task: object) -> None:
        if isinstance(task, TrainTask):
            time.sleep(3 * LIVE)

    coord = fake_coordinator(store, cfg)
    pis = [FakePi(coord, d, 0.1, hook=slow if i == 2 else None) for i, d in enumerate(devices)]
    with pis_running(coord, pis, connected=True):
        summary = coord.run_round()
    assert summary["ok"] and summary["survivors"] == 3, summary
    store.close()
