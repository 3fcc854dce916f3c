"""Issue 22's fleet quality, in process: the evaluate stage's second secure-aggregation session
over each Pi's confusion counts (real ServerProtocol/ClientProtocol, real frames, real SQLite).

- the stored total is exactly the sum of the Pis' true counts, even near the clip bound;
- a Pi that leaves or dies in the quality session leaves the round and the gate intact (the
  sum of the others, or no figure when too few are left);
- no per-Pi per-language figure is sent or stored: every reply frame the coordinator receives
  and every cell of every store table is inspected.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
from fleet_fakes import (  # tests/ on sys.path
    FakePi,
    fake_cfg,
    fake_coordinator,
    run_one_round,
    seeded_store,
)

from edge.tasks import EVALUATE, SecAggTask
from edge.wire import Frame
from federated.coordinator import Coordinator
from federated.evaluate_stage import MAX_COUNT
from federated.store_views import FleetViews
from model.metrics import DEVICE_REPORT_FIELDS

LANGUAGES = ["Czech", "Dutch"]  # the fake template's (tests/fleet_fakes.py)
# Distinct per Pi, so no single Pi's matrix equals any sum of several.
COUNTS = [
    np.array([[8, 2], [3, 7]]),
    np.array([[1, 0], [5, 40]]),
    np.array([[13, 6], [0, 2]]),
    np.array([[4, 4], [9, 11]]),
]


def _fleet(fleet_dir: Path, n: int, **cfg: Any) -> tuple[Coordinator, list]:
    cfg.setdefault("threshold", 2 if n == 3 else 3)  # valid for training's n (c = (n-1)//3)
    store, devices = seeded_store(fleet_dir, [f"pi-{i}" for i in range(n)])
    coord = fake_coordinator(store, fake_cfg(min_devices=n, **cfg))
    return coord, devices


def _in_quality_session(pi: FakePi, task: object) -> bool:
    """Whether ``task`` is a request of the evaluate stage's quality session."""
    return isinstance(task, SecAggTask) and EVALUATE in pi.seen


def _stored_quality(coord: Coordinator, version: int) -> dict[str, Any]:
    views = FleetViews(coord.store.path)
    try:
        return views.quality(version)
    finally:
        views.close()


def test_the_stored_fleet_quality_is_exactly_the_sum_of_the_pis_counts(fleet_dir: Path) -> None:
    coord, devices = _fleet(fleet_dir, 3)
    # Counts near the clip bound: one level each, so only an exact sum gets them right.
    big = [np.array([[MAX_COUNT, 1], [0, MAX_COUNT - 3]]), COUNTS[0], COUNTS[1]]
    pis = [FakePi(coord, d, 0.1, confusion=c) for d, c in zip(devices, big, strict=True)]
    summary = run_one_round(coord, pis)
    assert summary["ok"] and summary["promoted"], summary
    q = _stored_quality(coord, summary["version"])
    expected = sum(big)
    assert q["available"] and q["devices"] == 3 and q["languages"] == LANGUAGES
    assert q["counts"] == expected.tolist()  # exact, integers
    assert q["recall"]["Dutch"] == expected[1, 1] / expected[1].sum()
    assert q["deployed"] and q["version"] == coord.store.deployed().version
    assert (
        "evaluate_secagg_unmasking" in summary["timings"]
        and "quality_session" in (summary["timings"])
    )
    # The gate kept using the per-device metrics: one row per Pi, three fields each.
    assert summary["fleet"]["n_devices"] == 3


def test_a_pi_leaving_the_quality_session_costs_only_its_own_counts(fleet_dir: Path) -> None:
    coord, devices = _fleet(fleet_dir, 4)

    def leave(pi: FakePi, task: object) -> None:
        if _in_quality_session(pi, task) and pi.member.active:
            pi.member.leave()  # its answer is then an error reply: dropped at once

    pis = [
        FakePi(coord, d, 0.1, confusion=c, hook=leave if i == 1 else None)
        for i, (d, c) in enumerate(zip(devices, COUNTS, strict=False))
    ]
    summary = run_one_round(coord, pis)
    assert summary["ok"] and summary["promoted"], summary
    q = _stored_quality(coord, summary["version"])
    assert q["available"] and q["devices"] == 3
    assert q["counts"] == (COUNTS[0] + COUNTS[2] + COUNTS[3]).tolist()
    evaluated = sqlite3.connect(coord.store.path).execute(
        "SELECT COUNT(*) FROM device_metrics WHERE version=?", (summary["version"],)
    )
    assert evaluated.fetchone()[0] == 4  # all four evaluated


def test_a_pi_dying_in_the_quality_session_leaves_the_round_and_gate_intact(
    fleet_dir: Path,
) -> None:
    coord, devices = _fleet(fleet_dir, 3, silence_timeout=1.0)

    def die(pi: FakePi, task: object) -> None:
        if _in_quality_session(pi, task):
            coord.heartbeat(pi.device, {"kind": "heartbeat", "task": "x"})  # a busy Pi beats
            pi.dead = True  # power cut: no answer, no more polls or beats

    pis = [
        FakePi(coord, d, 0.1, confusion=c, hook=die if i == 2 else None)
        for i, (d, c) in enumerate(zip(devices, COUNTS, strict=False))
    ]
    summary = run_one_round(coord, pis)
    # Three Pis, threshold 2 (the fleet's): the other two's sum is still revealed...
    assert summary["ok"] and summary["promoted"], summary
    assert summary["fleet"]["n_devices"] == 3  # the gate saw all three reports
    q = _stored_quality(coord, summary["version"])
    assert q["available"] and q["counts"] == (COUNTS[0] + COUNTS[1]).tolist()
    assert summary["timings"]["quality_session"] < 10  # it did not wait out the stage


def test_too_few_pis_left_means_no_fleet_quality_but_a_promoted_round(fleet_dir: Path) -> None:
    coord, devices = _fleet(fleet_dir, 3, threshold=3)

    def leave(pi: FakePi, task: object) -> None:
        if _in_quality_session(pi, task) and pi.member.active:
            pi.member.leave()

    pis = [
        FakePi(coord, d, 0.1, confusion=c, hook=leave if i == 0 else None)
        for i, (d, c) in enumerate(zip(devices, COUNTS, strict=False))
    ]
    summary = run_one_round(coord, pis)
    assert summary["ok"] and summary["promoted"], summary
    assert coord.store.deployed().version == summary["version"]
    q = _stored_quality(coord, summary["version"])
    assert not q["available"] and "counts" not in q
    rows = sqlite3.connect(coord.store.path).execute("SELECT COUNT(*) FROM fleet_quality")
    assert rows.fetchone()[0] == 0


def test_a_pi_whose_counts_cannot_be_summed_exactly_stays_out(fleet_dir: Path) -> None:
    coord, devices = _fleet(fleet_dir, 4)
    counts = [np.array([[MAX_COUNT + 1, 0], [0, 1]]), *COUNTS[1:]]
    pis = [FakePi(coord, d, 0.1, confusion=c) for d, c in zip(devices, counts, strict=True)]
    summary = run_one_round(coord, pis)
    assert summary["ok"], summary
    assert any("clip bound" in e for e in pis[0].errors), pis[0].errors
    q = _stored_quality(coord, summary["version"])
    assert q["available"] and q["counts"] == sum(COUNTS[1:]).tolist()


def _spy(coord: Coordinator) -> list[tuple[int, Frame]]:
    """Every reply frame the coordinator receives, as it receives it."""
    frames: list[tuple[int, Frame]] = []
    real = coord.submit

    def submit(device: Any, frame: Frame) -> None:
        frames.append((device.id, frame))
        real(device, frame)

    coord.submit = submit  # type: ignore[method-assign]
    return frames


def test_no_per_pi_per_language_figure_is_sent_or_stored(fleet_dir: Path) -> None:
    coord, devices = _fleet(fleet_dir, 3)
    frames = _spy(coord)
    pis = [FakePi(coord, d, 0.1, confusion=c) for d, c in zip(devices, COUNTS, strict=False)]
    summary = run_one_round(coord, pis)
    assert summary["ok"], summary
    own = {json.dumps(c.tolist()) for c in COUNTS[:3]} | {
        json.dumps(c.tolist(), separators=(",", ":")) for c in COUNTS[:3]
    }

    # Sent: every evaluate reply carries exactly the device report fields, nothing else.
    evaluate_replies = [f for _, f in frames if "metrics" in f.header]
    assert len(evaluate_replies) == 3
    for f in evaluate_replies:
        assert set(f.header) == {"task", "status", "metrics", "version"}
        assert set(f.header["metrics"]) == set(DEVICE_REPORT_FIELDS) and f.payload == b""
    for _, f in frames:
        head = json.dumps(f.header)
        assert not any(lang in head for lang in LANGUAGES), f.header
        assert not any(o in head for o in own), f.header

    # Stored: language names and counts only in the fleet total, which is a sum of >= 2 Pis.
    db = sqlite3.connect(coord.store.path)
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    assert "fleet_quality" in tables
    for table in tables:
        for row in db.execute(f"SELECT * FROM {table}"):  # table names from sqlite_master
            text = " ".join(str(v) for v in row if not isinstance(v, bytes))
            assert not any(o in text for o in own), (table, row)
            if table != "fleet_quality":
                assert not any(lang in text for lang in LANGUAGES), (table, row)
    for (metrics,) in db.execute("SELECT metrics FROM device_metrics"):
        assert set(json.loads(metrics)) == set(DEVICE_REPORT_FIELDS)
    ((devices_summed, counts),) = db.execute("SELECT devices, counts FROM fleet_quality")
    assert devices_summed == 3 and json.loads(counts) == sum(COUNTS[:3]).tolist()


def test_without_fleet_quality_configured_no_session_is_opened(fleet_dir: Path) -> None:
    coord, devices = _fleet(fleet_dir, 3, fleet_quality=False)
    pis = [FakePi(coord, d, 0.1, confusion=c) for d, c in zip(devices, COUNTS, strict=False)]
    summary = run_one_round(coord, pis)
    assert summary["ok"], summary
    assert "quality_session" not in summary["timings"]
    for p in pis:
        assert p.seen[p.seen.index(EVALUATE) + 1 :] == ["deploy"]
    assert not _stored_quality(coord, summary["version"])["available"]
