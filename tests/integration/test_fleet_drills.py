"""Power-loss drills with real processes on loopback: a TLS coordinator in this process and
`pifed edge` subprocesses; a Pi is killed (kill -9 of its process group) while busy on a task
(``--fault-hang-in``: it heartbeats until killed) or dies right after answering a stage
(``--fault-exit-after``). The default secure-aggregation threshold (t = floor(2n/3) + 1) is kept,
so losing one Pi of 3 (or two of 5) aborts the session: the drills check that the abort comes at
once and that the fleet goes on with who is left.

Timeouts are small so the drills are fast: ``silence_timeout`` 3 s (default 10 s) and
``live_window`` 5 s (default 20 s); benchmarks/experiments/fleet_liveness.py measures the same
drills with the defaults.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fleet_harness import (  # tests/integration on sys.path
    PROMOTE_ALL,
    Edge,
    device_folders,
    started_fleet,
)

from federated.coordinator import FleetConfig
from federated.fleet import FleetServer
from federated.round_settings import RoundSettings
from model.dataset import NamesDataset

pytestmark = pytest.mark.slow  # starts TensorFlow and real processes

NAMES_PER_DEVICE = 300
SILENCE = 3.0  # --silence-timeout for these drills (default 10 s)
LIVE = 5.0  # --live-window for these drills (default 20 s)


def _cfg(rounds: int, n: int, live_window: float = LIVE) -> FleetConfig:
    """All ``n`` Pis must be connected for the first round; 2 suffice after that. The default
    threshold; a gate that promotes every round (so every round deploys)."""
    return FleetConfig(
        rounds=rounds,
        min_devices=2,
        settings=RoundSettings(
            local_epochs=1,
            client_lr=0.5,
            gate=PROMOTE_ALL,
        ),
        stage_timeout=60.0,
        train_timeout=300.0,  # far beyond every bound below: only liveness can drop a Pi
        eval_timeout=300.0,
        deploy_timeout=120.0,
        poll_wait=1.0,
        live_window=live_window,
        silence_timeout=SILENCE,
        wait_devices_timeout=120.0,
    )


class Drill:
    """A coordinator in this process (events time-stamped) and ``n`` edge subprocesses."""

    def __init__(self, server: FleetServer, edges: list[Edge]) -> None:
        self.server, self.edges = server, edges
        self.events: list[tuple[float, dict[str, Any]]] = []

    def at(self, kind: str, **match: Any) -> list[tuple[float, dict[str, Any]]]:
        return [
            (t, e)
            for t, e in list(self.events)
            if e.get("event") == kind and all(e.get(k) == v for k, v in match.items())
        ]

    def wait_event(self, kind: str, timeout: float, **match: Any) -> tuple[float, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hits = self.at(kind, **match)
            if hits:
                return hits[0]
            time.sleep(0.05)
        raise AssertionError(f"no {kind} {match} within {timeout} s: {self.events}")

    def completed_with(self, survivors: int, timeout: float) -> tuple[float, dict[str, Any]]:
        """The first completed round with exactly this many survivors."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hits = [(t, e) for t, e in self.at("round_end") if e.get("survivors") == survivors]
            if hits:
                return hits[0]
            time.sleep(0.05)
        raise AssertionError(f"no round with {survivors} survivors in {timeout} s: {self.events}")


@contextmanager
def drill(
    root: Path,
    model: Path,
    certs: Path,
    ds: NamesDataset,
    n: int,
    rounds: int,
    hang: dict[int, str] | None = None,
    exit_after: dict[int, str] | None = None,
    live_window: float = LIVE,
) -> Iterator[Drill]:
    """Start the fleet, wait until all ``n`` Pis are connected, run the rounds in the
    background; stop everything on exit."""
    kw = {i: {"hang_in": k} for i, k in (hang or {}).items()}
    for i, stage in (exit_after or {}).items():
        kw.setdefault(i, {})["exit_after"] = stage
    folders = device_folders(ds, root, n, NAMES_PER_DEVICE)
    with started_fleet(root, model, certs, _cfg(rounds, n, live_window), folders, kw) as f:
        d = Drill(f.server, f.edges)
        d.events = f.events
        runner = f.server.run_rounds_in_background()
        yield d
        runner.join(timeout=60)
        assert not runner.is_alive(), "the coordinator did not finish its rounds"


def _kill_when_hanging(d: Drill, i: int) -> float:
    """Wait until Pi ``i`` is stuck in its task (heartbeating), kill -9 it; the kill's time."""
    d.edges[i].wait_for(lambda e: e.get("event") == "fault_hang", timeout=120)
    time.sleep(1)  # a heartbeat or two lands first: the coordinator knows it as busy
    d.edges[i].kill()
    return time.monotonic()


def test_kill_9_in_training_aborts_at_once_and_the_two_survivors_complete_a_round(
    tmp_path: Path, fleet_model: Path, certs: Path, ds: NamesDataset
) -> None:
    """3 Pis, t = 3: Pi 2 dies mid-training. The session cannot reach its threshold, so it
    aborts as soon as the Pi is known gone (silence timeout), and the next round runs with the
    two survivors (t = 2 of 2); all within 60 s of the kill."""
    with drill(tmp_path, fleet_model, certs, ds, 3, rounds=1, hang={2: "train"}) as d:
        killed = _kill_when_hanging(d, 2)
        failed_at, failed = d.wait_event("round_failed", timeout=30, round=1)
        assert "threshold" in failed["reason"], failed
        assert failed_at - killed < SILENCE + 5, failed_at - killed
        done_at, done = d.completed_with(2, timeout=60 - (time.monotonic() - killed))
        assert done["round"] == 2 and done_at - killed < 60
    print(f"train kill: aborted {failed_at - killed:.1f} s, round 2 done {done_at - killed:.1f} s")


def test_kill_9_in_evaluation_drops_the_pi_and_the_next_round_runs_with_the_two(
    tmp_path: Path, fleet_model: Path, certs: Path, ds: NamesDataset
) -> None:
    """Pi 2 dies while evaluating round 1's candidate: round 1 completes on the other two
    reports once the Pi is known gone (silence timeout), its deploy does not wait for it, and
    round 2 runs with the two survivors. The live window is long here (15 s against 3 s of
    silence), as by default (20 s against 10 s): before the fix the deploy stage waited for
    the gone Pi until the live window, and the next round could pick it and abort."""
    with drill(
        tmp_path, fleet_model, certs, ds, 3, rounds=2, hang={2: "evaluate"}, live_window=15.0
    ) as d:
        killed = _kill_when_hanging(d, 2)
        end1_at, end1 = d.wait_event("round_end", timeout=30, round=1)
        assert end1["device_reports"] == 2 and end1_at - killed < SILENCE + 5, (
            end1,
            end1_at - killed,
        )
        done_at, done = d.completed_with(2, timeout=60 - (time.monotonic() - killed))
        assert done["round"] == 2 and done_at - killed < 60, done
        assert [e["devices"] for _, e in d.at("round_start")] == [3, 2]
    print(
        f"evaluate kill: round 1 done {end1_at - killed:.1f} s, round 2 with 2 "
        f"done {done_at - killed:.1f} s"
    )


def test_kill_9_in_deploy_ends_the_round_and_the_next_runs_with_the_two(
    tmp_path: Path, fleet_model: Path, certs: Path, ds: NamesDataset
) -> None:
    """Pi 2 dies while installing round 1's promoted version: the deploy stage stops waiting
    for it after the silence timeout (not the 15 s live window), and round 2 runs with the two
    survivors; within 60 s of the kill."""
    with drill(
        tmp_path, fleet_model, certs, ds, 3, rounds=2, hang={2: "deploy"}, live_window=15.0
    ) as d:
        killed = _kill_when_hanging(d, 2)
        end1_at, end1 = d.wait_event("round_end", timeout=60, round=1)
        assert end1["promoted"] and end1_at - killed < SILENCE + 5, (end1, end1_at - killed)
        done_at, done = d.completed_with(2, timeout=60 - (time.monotonic() - killed))
        assert done["round"] == 2 and done_at - killed < 60, done
        assert [e["devices"] for _, e in d.at("round_start")] == [3, 2]
    print(
        f"deploy kill: round 1 done {end1_at - killed:.1f} s, round 2 with 2 "
        f"done {done_at - killed:.1f} s"
    )


def test_two_of_five_die_at_different_stages_and_the_next_round_completes(
    tmp_path: Path, fleet_model: Path, certs: Path, ds: NamesDataset
) -> None:
    """5 Pis, t = 4: Pi 4 is killed mid-training (dropped at AdvertiseKeys), so 4 go on;
    Pi 3 dies right after answering ShareKeys (dropped at MaskedInputCollection), leaving 3 < t.
    Round 1 aborts within 30 s of the second death and round 2 completes with the three."""
    with drill(
        tmp_path,
        fleet_model,
        certs,
        ds,
        5,
        rounds=1,
        hang={4: "train"},
        exit_after={3: "ShareKeysRequest"},
    ) as d:
        killed = _kill_when_hanging(d, 4)
        assert d.edges[3].proc.wait(60) == 137  # the second death
        died = time.monotonic()
        end_at, end = d.wait_event("round_failed", timeout=30, round=1)
        assert "threshold" in end["reason"] and end_at - died < 30, (end, end_at - died)
        done_at, done = d.completed_with(3, timeout=60)
        assert done["round"] == 2
        store = d.server.store
        (dropped,) = store._db.execute(
            "SELECT dropped FROM secagg_sessions ORDER BY rowid LIMIT 1"
        ).fetchone()
    print(
        f"two of five: first kill -> second death {died - killed:.1f} s; round 1 aborted "
        f"{end_at - died:.1f} s after it, round 2 done {done_at - died:.1f} s; dropped {dropped}"
    )
