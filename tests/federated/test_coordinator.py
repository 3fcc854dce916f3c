"""A whole fleet round through the broker and the round runner, in one process.

Fake devices call ``Coordinator.poll`` / ``submit`` directly (no gRPC, no subprocesses), speak the
real wire frames and typed tasks, and run the real secure-aggregation client; the store is a real
SQLite file. Only the TFLite exporter is faked (it needs TensorFlow): it returns marked bytes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edge.secagg import (
    ClientProtocol,
    decode_message,
)
from edge.tasks import (
    DEPLOY,
    EVALUATE,
    DeployReply,
    DeployTask,
    ErrorReply,
    EvaluateReply,
    EvaluateTask,
    IdleTask,
    PollRequest,
    Reply,
    SecAggReply,
    SecAggTask,
    TrainReply,
    TrainTask,
    decode_task,
    reply_frame,
)
from edge.wire import decode, encode
from federated.broker import StaleTask
from federated.coordinator import Coordinator, FleetConfig
from federated.gate import GateConfig
from federated.round_settings import RoundSettings
from federated.store import Device, Store
from model.encoding import Vocab
from model.manifest import MANIFEST_NAME, ModelManifest, WeightSpec

N_PARAMS = 12


class FakeExporter:
    """Stands in for the TFLite converter: marked bytes per version."""

    def __init__(self) -> None:
        self.exported: list[np.ndarray] = []

    def export(self, flat: np.ndarray, version: int, kinds: tuple[str, ...]) -> dict[str, bytes]:
        self.exported.append(np.array(flat))
        files = {f"model_{k}.tflite": f"{k}-{version}".encode() for k in kinds}
        return {MANIFEST_NAME: f"manifest-{version}".encode(), **files}


@pytest.fixture()
def fleet_dir(tmp_path: Path) -> Path:
    manifest = ModelManifest(
        languages=("Czech", "Dutch"),
        vocab=Vocab(("a", "b"), 16),
        model_config={},
        artifacts={},
        weights=(WeightSpec("w", (N_PARAMS,)),),
        train_batch=32,
    )
    manifest.save(tmp_path / "model")
    return tmp_path


def _store(fleet_dir: Path, names: list[str]) -> tuple[Store, list[Device]]:
    store = Store(fleet_dir / "fleet.db")
    if store.initial_version() is None:
        files = {
            MANIFEST_NAME: (fleet_dir / "model" / MANIFEST_NAME).read_bytes(),
            "train.tflite": b"train-program",
            "model_float.tflite": b"float-0",
        }
        store.add_version(np.zeros(N_PARAMS, np.float32).tobytes(), files, "initial")
    tokens = [store.enroll(n) for n in names]
    return store, [store.authenticate(t) for t in tokens]


def _cfg(**kw: object) -> FleetConfig:
    base: dict = dict(
        rounds=1,
        min_devices=3,
        threshold=2,
        poll_wait=0.2,
        live_window=30.0,
        stage_timeout=10.0,
        train_timeout=600.0,
        eval_timeout=30.0,
        deploy_timeout=10.0,
        wait_devices_timeout=30.0,
        settings=RoundSettings(gate=GateConfig(min_accuracy=0.0, tolerance=1.0)),
    )
    base.update(kw)
    return FleetConfig(**base)


class FakePi:
    """A device that answers tasks in-process through real frames."""

    def __init__(
        self,
        coord: Coordinator,
        device: Device,
        update: float,
        examples: int = 10,
        fail_train: bool = False,
        hook: Callable[[FakePi, object], None] | None = None,
    ) -> None:
        self.coord, self.device = coord, device
        self.update = np.full(N_PARAMS, update, np.float32)
        self.examples = examples
        self.fail_train = fail_train
        self.hook = hook
        self.deployed: int | None = None
        self.seen: list[str] = []
        self.stale: list[StaleTask] = []
        self.dead = False
        self.client: ClientProtocol | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            head, payload = self.coord.poll(self.device, PollRequest(self.deployed).header())
            frame = decode(encode(head, payload), 1 << 20)  # through the real wire format
            task = decode_task(frame)
            if isinstance(task, IdleTask):
                continue
            self.seen.append(task.kind)
            if self.hook is not None:
                self.hook(self, task)
            if self.dead:
                return
            reply = self.answer(task, frame.payload)
            out_head, out_payload = reply_frame(frame.get("task", str), reply)
            try:
                self.coord.submit(self.device, decode(encode(out_head, out_payload), 1 << 20))
            except StaleTask as e:
                self.stale.append(e)

    def answer(self, task: object, payload: bytes) -> Reply:
        if isinstance(task, TrainTask):
            if self.fail_train:
                return ErrorReply("RuntimeError: the trainer crashed")
            self.client = ClientProtocol(task.client_id, task.secagg)
            return TrainReply(0.5, 0.01, task.lr, task.local_steps, self.examples)
        if isinstance(task, SecAggTask):
            if self.client is None:  # as the real edge: no session without a training task
                return ErrorReply("WireError: secure-aggregation request without a training task")
            msg = decode_message(payload)
            out = self.client.respond(msg, [self.update], self.examples)
            return SecAggReply(type(msg).__name__, out.to_bytes())
        if isinstance(task, EvaluateTask):
            return EvaluateReply(
                task.version,
                {"n": 20, "accuracy": 0.8, "balanced_accuracy": 0.6, "macro_f1": 0.5},
            )
        assert isinstance(task, DeployTask)
        self.deployed = task.version
        return DeployReply(task.version)


def _run(coord: Coordinator, pis: list[FakePi]) -> dict:
    for p in pis:
        p.thread.start()
    try:
        return coord.run_round()
    finally:
        for p in pis:
            p.stop.set()
        coord.stop()
        for p in pis:
            p.thread.join(timeout=5)


def test_a_round_runs_through_broker_and_runner_to_a_deployment(fleet_dir: Path) -> None:
    store, devices = _store(fleet_dir, ["a", "b", "c"])
    exporter = FakeExporter()
    coord = Coordinator(store, str(fleet_dir / "model"), _cfg(), exporter=exporter)
    pis = [FakePi(coord, d, u) for d, u in zip(devices, (0.1, 0.2, 0.3), strict=True)]
    summary = _run(coord, pis)
    assert summary["ok"], summary
    assert summary["survivors"] == 3 and summary["promoted"]
    # FedAvg of equal-weight updates from zero weights: the mean update (quantised to 32 bits).
    np.testing.assert_allclose(exporter.exported[0], np.full(N_PARAMS, 0.2), atol=1e-6)
    assert store.deployed().version == summary["version"]
    assert [p.deployed for p in pis] == [summary["version"]] * 3
    for p in pis:
        assert p.seen[0] == "train" and p.seen[-2:] == [EVALUATE, DEPLOY]
    rounds = store.rounds()
    assert rounds[-1]["status"] == "completed"
    store.close()


def test_a_failed_training_drops_that_pi_at_once(fleet_dir: Path) -> None:
    store, devices = _store(fleet_dir, ["a", "b", "c"])
    coord = Coordinator(store, str(fleet_dir / "model"), _cfg(), exporter=FakeExporter())
    pis = [FakePi(coord, d, 0.1, fail_train=(i == 2)) for i, d in enumerate(devices)]
    t = time.monotonic()
    summary = _run(coord, pis)
    # The training timeout is 600 s: the round must not wait it out for the failed Pi.
    assert time.monotonic() - t < 20
    assert summary["ok"], summary
    assert summary["survivors"] == 2
    store.close()


def test_a_late_reply_of_another_kind_is_not_swallowed_by_the_stage(fleet_dir: Path) -> None:
    """Pi 2 trains too slowly: the key stage closes on the two others at its deadline. Its late
    training answer arrives mid-evaluation; it is refused as stale (its task was cancelled with
    the stage) and never taken for an evaluation report."""
    store, devices = _store(fleet_dir, ["a", "b", "c"])
    cfg = _cfg(train_timeout=2.0)
    coord = Coordinator(store, str(fleet_dir / "model"), cfg, exporter=FakeExporter())

    def slow_trainer(pi: FakePi, task: object) -> None:
        if isinstance(task, TrainTask):
            deadline = time.monotonic() + 20
            while EVALUATE not in pis[0].seen and time.monotonic() < deadline:
                time.sleep(0.02)

    pis = [
        FakePi(coord, d, 0.1, hook=slow_trainer if i == 2 else None) for i, d in enumerate(devices)
    ]
    summary = _run(coord, pis)
    assert summary["ok"], summary
    assert summary["survivors"] == 2
    assert summary["device_reports"] == 2  # the late training reply was not counted
    assert len(pis[2].stale) == 1 and "not open" in str(pis[2].stale[0])
    assert EVALUATE in pis[0].seen and EVALUATE in pis[1].seen
    store.close()


def test_a_pi_that_stops_heartbeating_mid_training_is_dropped_at_once(fleet_dir: Path) -> None:
    """Pi 2 heartbeats while it trains (so it is not dropped), then dies without a word: the
    round goes on without it once it has been silent for the silence timeout, not at the 600 s
    training deadline. Pi 1 trains slowly without ever heartbeating (a Pi from before
    heartbeats): it is judged by the deadline only, and is not dropped."""
    store, devices = _store(fleet_dir, ["a", "b", "c"])
    cfg = _cfg(silence_timeout=1.0)
    events: list[dict] = []
    coord = Coordinator(
        store, str(fleet_dir / "model"), cfg, on_event=events.append, exporter=FakeExporter()
    )

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
    summary = _run(coord, pis)
    assert time.monotonic() - t < 20
    assert summary["ok"], summary
    assert summary["survivors"] == 2
    gone = [e for e in events if e.get("event") == "device_gone"]
    assert [e["device"] for e in gone] == [devices[2].id]
    store.close()


def test_the_broker_routes_replies_by_round_and_kind(fleet_dir: Path) -> None:
    store, devices = _store(fleet_dir, ["a"])
    coord = Coordinator(store, str(fleet_dir / "model"), _cfg(), exporter=FakeExporter())
    broker, dev = coord.broker, devices[0]
    coord.poll(dev, PollRequest(None).header())  # the device is known to the broker
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
