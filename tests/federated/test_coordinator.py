"""A whole fleet round through the broker and the round runner, in one process.

Fake devices call ``Coordinator.poll`` / ``submit`` directly (no gRPC, no subprocesses), speak the
real wire frames and typed tasks, and run the real secure-aggregation client; the store is a real
SQLite file. Only the TFLite exporter is faked (it needs TensorFlow): it returns marked bytes.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from fleet_fakes import (  # tests/ on sys.path
    N_PARAMS,
    FakeExporter,
    FakePi,
    fake_cfg,
    fake_coordinator,
    poll_header,
    run_one_round,
    seeded_store,
)

from edge.tasks import (
    DEPLOY,
    EVALUATE,
    SECAGG,
    DeployReply,
    DeployTask,
    EvaluateReply,
    EvaluateTask,
    TrainTask,
    reply_frame,
)
from edge.wire import decode, encode
from federated.broker import StaleTask
from model.manifest import MANIFEST_NAME


def test_a_round_runs_through_broker_and_runner_to_a_deployment(fleet_dir: Path) -> None:
    store, devices = seeded_store(fleet_dir, ["a", "b", "c"])
    exporter = FakeExporter()
    coord = fake_coordinator(store, exporter=exporter)
    pis = [FakePi(coord, d, u) for d, u in zip(devices, (0.1, 0.2, 0.3), strict=True)]
    summary = run_one_round(coord, pis)
    assert summary["ok"], summary
    assert summary["survivors"] == 3 and summary["promoted"]
    # FedAvg of equal-weight updates from zero weights: the mean update (quantised to 32 bits).
    np.testing.assert_allclose(exporter.exported[0], np.full(N_PARAMS, 0.2), atol=1e-6)
    assert store.deployed().version == summary["version"]
    assert [p.deployed for p in pis] == [summary["version"]] * 3
    for p in pis:
        # Training's session, then the evaluate stage's quality session (issue 22), then deploy.
        after = p.seen[p.seen.index(EVALUATE) :]
        assert p.seen[0] == "train" and after[-1] == DEPLOY and after.count(EVALUATE) == 1
        assert set(after[1:-1]) == {SECAGG} and len(after[1:-1]) == p.seen.count(SECAGG) // 2
    rounds = store.rounds()
    assert rounds[-1]["status"] == "completed"
    store.close()


def test_a_failed_training_drops_that_pi_at_once(fleet_dir: Path) -> None:
    store, devices = seeded_store(fleet_dir, ["a", "b", "c"])
    coord = fake_coordinator(store)
    pis = [FakePi(coord, d, 0.1, fail_train=(i == 2)) for i, d in enumerate(devices)]
    t = time.monotonic()
    summary = run_one_round(coord, pis)
    # The training timeout is 600 s: the round must not wait it out for the failed Pi.
    assert time.monotonic() - t < 20
    assert summary["ok"], summary
    assert summary["survivors"] == 2
    store.close()


def test_a_late_reply_of_another_kind_is_not_swallowed_by_the_stage(fleet_dir: Path) -> None:
    """Pi 2 trains too slowly: the key stage closes on the two others at its deadline. Its late
    training answer arrives mid-evaluation; it is refused as stale (its task was cancelled with
    the stage) and never taken for an evaluation report."""
    store, devices = seeded_store(fleet_dir, ["a", "b", "c"])
    cfg = fake_cfg(train_timeout=2.0)
    coord = fake_coordinator(store, cfg)

    def slow_trainer(pi: FakePi, task: object) -> None:
        if isinstance(task, TrainTask):
            deadline = time.monotonic() + 20
            while EVALUATE not in pis[0].seen and time.monotonic() < deadline:
                time.sleep(0.02)

    pis = [
        FakePi(coord, d, 0.1, hook=slow_trainer if i == 2 else None) for i, d in enumerate(devices)
    ]
    summary = run_one_round(coord, pis)
    assert summary["ok"], summary
    assert summary["survivors"] == 2
    assert summary["device_reports"] == 2  # the late training reply was not counted
    assert len(pis[2].stale) == 1 and "not open" in str(pis[2].stale[0])
    assert EVALUATE in pis[0].seen and EVALUATE in pis[1].seen
    store.close()


def test_the_broker_routes_replies_by_round_and_kind(fleet_dir: Path) -> None:
    store, devices = seeded_store(fleet_dir, ["a"])
    coord = fake_coordinator(store)
    broker, dev = coord.broker, devices[0]
    coord.poll(dev, poll_header(dev))  # the device is known to the broker
    broker.open(7, (EVALUATE,))
    files = {MANIFEST_NAME: "0" * 64, "model_float.tflite": "1" * 64}
    deploy_id = broker.assign(dev.id, DeployTask(3, files))
    eval_id = broker.assign(dev.id, EvaluateTask(7, 3, files))
    # Answers in order: a deploy reply first, then the evaluation.
    perfect = {"n": 1, "accuracy": 1.0, "balanced_accuracy": 1.0, "macro_f1": 1.0}
    for task_id, reply in ((deploy_id, DeployReply(3)), (eval_id, EvaluateReply(3, perfect))):
        head, payload = reply_frame(task_id, reply)
        coord.submit(dev, decode(encode(head, payload), 1 << 20))
    got = broker.next_reply(7, (EVALUATE,), timeout=1.0)
    assert got is not None and isinstance(got.reply, EvaluateReply)
    assert broker.next_reply(7, (EVALUATE,), timeout=0.1) is None  # the deploy reply is not here
    assert broker.live_devices()[0].deployed == 3
    # A replayed answer is stale.
    head, payload = reply_frame(eval_id, EvaluateReply(3, perfect))
    with pytest.raises(StaleTask):
        coord.submit(dev, decode(encode(head, payload), 1 << 20))
    store.close()


def test_a_pi_that_stops_heartbeating_mid_training_is_dropped_at_once(fleet_dir: Path) -> None:
    """Pi 2 heartbeats while it trains (so it is not dropped), then dies without a word: the
    round goes on without it once it has been silent for the silence timeout, not at the 600 s
    training deadline. Pi 1 trains slowly without ever heartbeating (a Pi from before
    heartbeats): it is judged by the deadline only, and is not dropped."""
    store, devices = seeded_store(fleet_dir, ["a", "b", "c"])
    cfg = fake_cfg(silence_timeout=1.0)
    events: list[dict] = []
    coord = fake_coordinator(store, cfg, on_event=events.append)

    def beat_then_die(pi: FakePi, task: object) -> None:
        if isinstance(task, TrainTask):
            for _ in range(6):  # 1.5 s of beating: longer than the silence timeout
                coord.heartbeat(pi.device, {"kind": "heartbeat", "task": "x"})
                time.sleep(0.25)
            assert not any(e.get("event") == "device_gone" for e in events)
            pi.dead = True  # it never answers: a Pi that lost power mid-training

    def slow_old_pi(pi: FakePi, task: object) -> None:
        if isinstance(task, TrainTask):
            time.sleep(2.0)  # silent, but it never heartbeated: not judged by silence

    hooks = [None, slow_old_pi, beat_then_die]
    pis = [FakePi(coord, d, 0.1, hook=h) for d, h in zip(devices, hooks, strict=True)]
    t = time.monotonic()
    summary = run_one_round(coord, pis)
    assert time.monotonic() - t < 20
    assert summary["ok"], summary
    assert summary["survivors"] == 2
    gone = [e for e in events if e.get("event") == "device_gone"]
    assert [e["device"] for e in gone] == [devices[2].id]
    store.close()
