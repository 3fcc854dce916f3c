"""In-process fake devices for coordinator tests: real frames, real secure aggregation.

Fake devices call ``Coordinator.poll`` / ``submit`` directly (no gRPC, no subprocesses), speak the
real wire frames and typed tasks, and run the real secure-aggregation client through the edge's
own ``SecAggMember`` (binding, leaving on a failure of their own side) with identities enrolled
as an operator would (``federated.authority.enroll_local``); the store is a real SQLite file.
Only the TFLite exporter is faked (it needs TensorFlow): it returns marked bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from fleet_harness import PROMOTE_ALL  # tests/integration on sys.path

from edge.device_identity import load_identity
from edge.secagg import SecAggError
from edge.secagg.identity import Identity
from edge.secagg_member import SecAggMember
from edge.tasks import (
    DeployReply,
    DeployTask,
    ErrorReply,
    EvaluateReply,
    EvaluateTask,
    IdleTask,
    PollRequest,
    Reply,
    SecAggTask,
    TrainReply,
    TrainTask,
    decode_task,
    reply_frame,
)
from edge.wire import WireError, decode, encode
from federated.authority import enroll_local, init_authority, load_authority_key
from federated.broker import StaleTask
from federated.coordinator import Coordinator, FleetConfig
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


def make_fleet_dir(tmp_path: Path) -> Path:
    """A template model folder (manifest only) under ``tmp_path``; returns ``tmp_path``."""
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


def seeded_store(fleet_dir: Path, names: list[str]) -> tuple[Store, list[Device]]:
    store = Store(fleet_dir / "fleet.db")
    if store.initial_version() is None:
        files = {
            MANIFEST_NAME: (fleet_dir / "model" / MANIFEST_NAME).read_bytes(),
            "train.tflite": b"train-program",
            "model_float.tflite": b"float-0",
        }
        store.add_version(np.zeros(N_PARAMS, np.float32).tobytes(), files, "initial")
    key_file = fleet_dir / "authority" / "authority.key"
    if not key_file.is_file():
        init_authority(key_file.parent)
    authority = load_authority_key(key_file)
    tokens = [enroll_local(store, n, authority, identity_dir(store, n)) for n in names]
    return store, [store.authenticate(t) for t in tokens]


def identity_dir(store: Store, name: str) -> Path:
    """Where a fake Pi's identity folder is (beside the store)."""
    return store.path.parent / "identities" / name


def poll_header(device: Device, deployed: int | None = None) -> dict[str, Any]:
    """A poll as the edge sends it: naming the certificate the device holds."""
    cert = hashlib.sha256(device.certificate).hexdigest() if device.certificate else None
    return PollRequest(deployed, cert).header()


def fake_cfg(**kw: object) -> FleetConfig:
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
        settings=RoundSettings(gate=PROMOTE_ALL),
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
        identity: Identity | None = None,
        confusion: np.ndarray | None = None,
    ) -> None:
        """``identity``: the Pi's (default: the one enrolled for ``device``). ``confusion``:
        its true x predicted counts on its held-out names (2 x 2, the fake template's two
        languages), which it sums in the quality session as the edge does."""
        self.coord, self.device = coord, device
        self.identity = identity or load_identity(identity_dir(coord.store, device.name))
        self.update = np.full(N_PARAMS, update, np.float32)
        self.examples = examples
        self.confusion = (
            np.array([[8, 2], [3, 7]], np.int64) if confusion is None else np.asarray(confusion)
        )
        self.fail_train = fail_train
        self.hook = hook
        self.deployed: int | None = None
        self.seen: list[str] = []
        self.stale: list[StaleTask] = []
        self.dead = False
        self.member = SecAggMember(self.identity)
        self.errors: list[str] = []  # the error replies this Pi sent
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            head, payload = self.coord.poll(
                self.device, PollRequest(self.deployed, self._cert_digest()).header()
            )
            frame = decode(encode(head, payload), 1 << 20)  # through the real wire format
            task = decode_task(frame)
            if isinstance(task, IdleTask):
                continue
            self.seen.append(task.kind)
            if self.hook is not None:
                self.hook(self, task)
            if self.dead:  # a hook may have cut the power: no answer, no more polls
                return
            try:
                reply = self.answer(task, frame.payload)
            except (SecAggError, WireError) as e:  # as the edge's _handle: reported at once
                reply = ErrorReply(f"{type(e).__name__}: {e}")
                self.errors.append(reply.error)
            out_head, out_payload = reply_frame(frame.get("task", str), reply)
            try:
                self.coord.submit(self.device, decode(encode(out_head, out_payload), 1 << 20))
            except StaleTask as e:
                self.stale.append(e)

    def _cert_digest(self) -> str:
        return hashlib.sha256(self.identity.certificate.to_bytes()).hexdigest()

    def answer(self, task: object, payload: bytes) -> Reply:
        if isinstance(task, TrainTask):
            if self.fail_train:
                return ErrorReply("RuntimeError: the trainer crashed")
            self.member.begin(task, self.update, self.examples)
            return TrainReply(0.5, 0.01, task.lr, task.local_steps, self.examples)
        if isinstance(task, SecAggTask):
            return self.member.answer(payload)
        if isinstance(task, EvaluateTask):
            if task.quality is not None:  # as the edge's _join_quality: a failure stays out
                try:
                    self.member.join_quality(task, self.confusion)
                except (SecAggError, ValueError) as e:
                    self.errors.append(f"quality: {e}")
            n = int(self.confusion.sum())
            acc = float(np.trace(self.confusion)) / n
            return EvaluateReply(
                task.version,
                {"n": n, "accuracy": acc, "balanced_accuracy": 0.6, "macro_f1": 0.5},
            )
        assert isinstance(task, DeployTask)
        self.deployed = task.version
        return DeployReply(task.version)


def fake_coordinator(
    store: Store,
    cfg: FleetConfig | None = None,
    on_event: Callable[[dict], None] | None = None,
    exporter: FakeExporter | None = None,
) -> Coordinator:
    """A real coordinator over a :func:`seeded_store` and the template model beside it
    (:func:`make_fleet_dir`), with :class:`FakeExporter` in place of the TFLite converter."""
    return Coordinator(
        store,
        str(store.path.parent / "model"),
        cfg if cfg is not None else fake_cfg(),
        on_event=on_event,
        exporter=exporter if exporter is not None else FakeExporter(),
    )


@contextlib.contextmanager
def pis_running(coord: Coordinator, pis: list[FakePi], connected: bool = False) -> Iterator[None]:
    """The fake Pis polling ``coord`` from their threads (``connected``: once every one counts
    as live); on exit the Pis and the coordinator are stopped, whatever the test did."""
    for p in pis:
        p.thread.start()
    try:
        deadline = time.monotonic() + 10
        while connected and len(coord.live_devices()) < len(pis):
            assert time.monotonic() < deadline, "the fake Pis never all connected"
            time.sleep(0.02)
        yield
    finally:
        for p in pis:
            p.stop.set()
        coord.stop()
        for p in pis:
            p.thread.join(timeout=5)


def run_one_round(coord: Coordinator, pis: list[FakePi]) -> dict:
    """One round of ``coord`` with ``pis`` answering; its summary."""
    with pis_running(coord, pis):
        return coord.run_round()
