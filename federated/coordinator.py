"""The fleet coordinator: rounds of train -> secure aggregation -> FedAvg -> on-device
evaluation -> gate -> deploy, over per-device task queues (no transport code here).

Devices pull: each long-polls for its next task and submits the answer with the task's id.
A task id is single-use, so a replayed or stale submission is rejected. Everything a device
sends back is checked here before it touches the round: the secure-aggregation state machine
validates its own messages, and metrics go through the gate's validation.

What reaches the coordinator from a Pi: public keys, encrypted shares, the masked update, its
training loss and its evaluation metrics. Never a name, never an unmasked update.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edge.secagg import SecAggConfig, SecAggError, StageTimeouts
from edge.wire import Frame, WireError
from federated.exporter import CandidateExporter
from federated.gate import FleetMetrics, GateError, aggregate_device_metrics, decide
from federated.round_settings import RoundSettings
from federated.secagg_server import ServerProtocol
from federated.store import Device, ModelVersion, Store
from model.manifest import MANIFEST_NAME, ModelManifest

log = logging.getLogger("pifed.coordinator")
EventSink = Callable[[dict[str, Any]], None]


class StaleTask(ValueError):
    """A submission names a task that is not the device's open task (replay or stale)."""


class UnknownBlob(ValueError):
    """A device asked for a blob that no model version references."""


@dataclass(frozen=True)
class FleetConfig:
    """Round settings; printed in every report."""

    rounds: int = 3
    min_devices: int = 2
    wait_devices_timeout: float = 120.0
    # What each Pi does in a round and how the update is applied, shared with the simulation.
    settings: RoundSettings = field(default_factory=RoundSettings)
    # SecAgg quantisation: per-coordinate clip of a weight *update*, and the cap on a device's
    # example-count weight (bounds what one Pi can contribute).
    clip_bound: float = 1.0
    max_weight: int = 1000
    bit_width: int = 32
    threshold: int | None = None
    # AdvertiseKeys follows local training, so its deadline covers training time.
    train_timeout: float = 600.0
    stage_timeout: float = 60.0
    eval_timeout: float = 300.0
    deploy_timeout: float = 120.0
    deploy_kind: str = "float"
    poll_wait: float = 5.0
    # A device that polled this recently counts as connected.
    live_window: float = 20.0

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.min_devices < 2:
            raise ValueError("rounds >= 1 and min_devices >= 2 (secure aggregation)")
        if self.deploy_kind not in ("float", "dynamic", "int8"):
            raise ValueError(f"deploy_kind must be float, dynamic or int8, got {self.deploy_kind}")
        for name in (
            "train_timeout",
            "stage_timeout",
            "eval_timeout",
            "deploy_timeout",
            "wait_devices_timeout",
            "poll_wait",
        ):
            if not 0 < getattr(self, name) < 86400:
                raise ValueError(f"{name} must be a finite number of seconds > 0")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for reports."""
        return asdict(self)


@dataclass
class _Link:
    device_id: int
    name: str
    last_poll: float = 0.0
    deployed: int | None = None
    tasks: deque[tuple[str, dict[str, Any], bytes]] = field(default_factory=deque)


class RoundFailed(RuntimeError):
    """A round could not complete (too few devices or survivors); nothing was revealed."""


class Coordinator:
    """Owns the device queues and runs rounds; the gRPC service calls poll/submit/fetch."""

    def __init__(
        self,
        store: Store,
        model_dir: str,
        cfg: FleetConfig,
        on_event: EventSink | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.cfg = cfg
        self._clock = clock
        self._emit = on_event or (lambda e: None)
        self._cv = threading.Condition()
        self._links: dict[int, _Link] = {}
        self._inbox: queue.Queue[tuple[int, dict[str, Any], Frame]] = queue.Queue()
        # Devices that dropped out of a session, with when: they count as live again only after
        # they poll anew (a dead Pi's last poll may still be inside the live window).
        self._suspect: dict[int, float] = {}
        self._stop = threading.Event()
        self.template = ModelManifest.load(model_dir)
        self.exporter = CandidateExporter(self.template)
        aborted = store.abort_unfinished_rounds("coordinator restarted; round aborted")
        if aborted:
            log.warning("aborted rounds %s left running by a previous coordinator", aborted)
            self._emit({"event": "restart", "aborted_rounds": aborted})
        self._base = self._ensure_initial_version(model_dir)
        # Rounds started by this coordinator: the position in the learning-rate schedule.
        self._rounds_started = 0

    # -- setup ---------------------------------------------------------------------------------
    def _ensure_initial_version(self, model_dir: str) -> ModelVersion:
        """Version 1 is the template model; the train artifact and its manifest are blobs."""
        latest = self.store.latest_version()
        if latest is not None:
            return latest
        from pathlib import Path

        from edge.trainer import OnDeviceTrainer

        trainer = OnDeviceTrainer(model_dir)
        weights = trainer.flat_weights()
        files = {
            p.name: p.read_bytes()
            for p in Path(model_dir).iterdir()
            if p.suffix == ".tflite" or p.name == MANIFEST_NAME
        }
        v = self.store.add_version(weights.tobytes(), files, "initial")
        return self.store.version(v)

    def stop(self) -> None:
        """Ask the round loop to stop at the next check."""
        self._stop.set()
        with self._cv:
            self._cv.notify_all()

    # -- device-facing calls (thread-safe) ------------------------------------------------------
    def poll(self, device: Device, header: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        """Long-poll: the device's open task, or ``idle`` after ``poll_wait`` seconds."""
        deployed = header.get("deployed")
        with self._cv:
            link = self._links.setdefault(device.id, _Link(device.id, device.name))
            link.last_poll = self._clock()
            link.deployed = deployed if isinstance(deployed, int) else None
            self._maybe_queue_deploy(link)
            self._cv.notify_all()
            deadline = self._clock() + self.cfg.poll_wait
            while not link.tasks and not self._stop.is_set():
                left = deadline - self._clock()
                if left <= 0:
                    break
                self._cv.wait(left)
            link.last_poll = self._clock()
            if link.tasks:
                task_id, head, payload = link.tasks[0]
                return {**head, "task": task_id}, payload
        self.store.touch(device.id)
        return {"kind": "idle"}, b""

    def submit(self, device: Device, frame: Frame) -> None:
        """Accept the answer to the device's open task; anything else is StaleTask."""
        task_id = frame.get("task", str)
        with self._cv:
            link = self._links.get(device.id)
            if link is None or not link.tasks or link.tasks[0][0] != task_id:
                raise StaleTask(
                    f"device {device.name}: task {task_id[:8]}… is not open (replayed or stale)"
                )
            _, head, _ = link.tasks.popleft()
            self._cv.notify_all()
        self._inbox.put((device.id, head, frame))

    def fetch(self, digest: str) -> bytes:
        """A blob that some model version references (weights, artifacts, manifests)."""
        for v in self.store.versions():
            if digest == v.weights_sha256 or digest in v.artifacts.values():
                return self.store.get_blob(digest)
        raise UnknownBlob(f"no model version references blob {digest[:16]!r}")

    def _queue(self, device_id: int, header: dict[str, Any], payload: bytes = b"") -> str:
        task_id = secrets.token_hex(16)
        with self._cv:
            self._links[device_id].tasks.append((task_id, header, payload))
            self._cv.notify_all()
        return task_id

    def _maybe_queue_deploy(self, link: _Link) -> None:
        """Called under the lock: a device not running the deployed version gets it pushed."""
        deployed = self.store.deployed()
        if deployed is None or link.deployed == deployed.version:
            return
        if any(h.get("kind") == "deploy" for _, h, _ in link.tasks):
            return
        link.tasks.append((secrets.token_hex(16), self._deploy_header(deployed), b""))

    def _deploy_header(self, v: ModelVersion) -> dict[str, Any]:
        files = self._inference_files(v)
        return {"kind": "deploy", "version": v.version, "files": files}

    def _inference_files(self, v: ModelVersion) -> dict[str, str]:
        kind_file = f"model_{self.cfg.deploy_kind}.tflite"
        if kind_file not in v.artifacts:
            raise RoundFailed(f"version {v.version} has no {kind_file}")
        return {MANIFEST_NAME: v.artifacts[MANIFEST_NAME], kind_file: v.artifacts[kind_file]}

    def live_devices(self) -> list[_Link]:
        """Devices that polled within the live window (and since they last dropped out)."""
        now = self._clock()
        with self._cv:
            return [
                lk
                for lk in self._links.values()
                if now - lk.last_poll <= self.cfg.live_window
                and lk.last_poll > self._suspect.get(lk.device_id, float("-inf"))
            ]

    def _mark_dropped(self, dropped: Any) -> None:
        now = self._clock()
        with self._cv:
            for cid in dropped:
                self._suspect[int(cid)] = now

    def client_lr(self) -> float:
        """The on-device learning rate of the current round under ``cfg.client_lr_schedule``.

        Rounds past ``cfg.rounds`` (a caller running more) keep the last round's rate.
        """
        return self.cfg.settings.client_lr_at(self._rounds_started, self.cfg.rounds)

    # -- rounds --------------------------------------------------------------------------------
    def run(self) -> list[dict[str, Any]]:
        """Run ``cfg.rounds`` rounds; a failed round is recorded and the next one starts."""
        summaries = []
        for _ in range(self.cfg.rounds):
            if self._stop.is_set():
                break
            summaries.append(self.run_round())
        return summaries

    def _wait_devices(self) -> list[_Link]:
        deadline = self._clock() + self.cfg.wait_devices_timeout
        while not self._stop.is_set():
            live = self.live_devices()
            if len(live) >= self.cfg.min_devices:
                return sorted(live, key=lambda lk: lk.device_id)
            if self._clock() > deadline:
                raise RoundFailed(
                    f"only {len(live)} device(s) connected after {self.cfg.wait_devices_timeout}"
                    f" s; {self.cfg.min_devices} needed"
                )
            self._emit({"event": "waiting", "devices": len(live)})
            time.sleep(0.2)
        raise RoundFailed("stopped")

    def _drain(
        self, round_id: int, kinds: tuple[str, ...] = ("train", "secagg", "evaluate")
    ) -> None:
        """Forget a round's open tasks of these kinds (a late answer is then stale)."""
        with self._cv:
            for link in self._links.values():
                link.tasks = deque(
                    t
                    for t in link.tasks
                    if t[1].get("round") != round_id or t[1].get("kind") not in kinds
                )
        while not self._inbox.empty():
            self._inbox.get_nowait()

    def run_round(self) -> dict[str, Any]:
        """One full round; returns its summary (also stored)."""
        t0 = time.perf_counter()
        self._rounds_started += 1
        timings: dict[str, float] = {}
        try:
            links = self._wait_devices()
        except RoundFailed as e:
            self._emit({"event": "round_failed", "reason": str(e)})
            return {"ok": False, "reason": str(e)}
        base = self._base
        ids = [lk.device_id for lk in links]
        round_id = self.store.start_round(base.version, ids)
        self._emit(
            {
                "event": "round_start",
                "round": round_id,
                "devices": len(ids),
                "base_version": base.version,
            }
        )
        try:
            new_weights, survivors, losses = self._train_and_aggregate(round_id, base, ids, timings)
            t = time.perf_counter()
            files = self.exporter.export(new_weights, round_id, kinds=self._export_kinds())
            version = self.store.add_version(
                new_weights.tobytes(), files, "candidate", parent=base.version, round_id=round_id
            )
            timings["export"] = time.perf_counter() - t
            self._base = self.store.version(version)
            self._drain(round_id, ("train", "secagg"))  # dropped devices' leftovers
            self._emit({"event": "stage", "round": round_id, "stage": "evaluate"})
            t = time.perf_counter()
            fleet, reports = self._evaluate(round_id, self._base)
            timings["evaluate"] = time.perf_counter() - t
            deployed = self.store.deployed()
            deployed_metrics = (
                FleetMetrics(**deployed.fleet_metrics)
                if deployed and deployed.fleet_metrics
                else None
            )
            decision = decide(self.cfg.settings.gate, fleet, deployed_metrics)
            self.store.judge_version(version, decision.promote, decision.reason, fleet.to_dict())
            if decision.promote:
                self._push_deploy(round_id, self.store.version(version), timings)
            timings["total"] = time.perf_counter() - t0
            self.store.finish_round(
                round_id,
                True,
                decision.reason,
                new_version=version,
                survivors=survivors,
                timings=timings,
            )
            summary = {
                "ok": True,
                "round": round_id,
                "version": version,
                "devices": len(ids),
                "survivors": len(survivors),
                "train_loss": float(np.mean(losses)) if losses else None,
                "fleet": fleet.to_dict(),
                "promoted": decision.promote,
                "reason": decision.reason,
                "timings": timings,
                "device_reports": len(reports),
            }
            self._emit({"event": "round_end", **summary})
            return summary
        except (RoundFailed, SecAggError, GateError) as e:
            self.store.finish_round(round_id, False, f"{type(e).__name__}: {e}", timings=timings)
            self._emit({"event": "round_failed", "round": round_id, "reason": str(e)})
            return {"ok": False, "round": round_id, "reason": f"{type(e).__name__}: {e}"}
        finally:
            self._drain(round_id)

    def _export_kinds(self) -> tuple[str, ...]:
        return ("float",) if self.cfg.deploy_kind == "float" else ("float", self.cfg.deploy_kind)

    def _secagg_config(self, ids: list[int]) -> SecAggConfig:
        c = self.cfg
        return SecAggConfig(
            client_ids=tuple(ids),
            vector_lengths=(self.template.num_params,),
            threshold=c.threshold,
            bit_width=c.bit_width,
            clip_bound=c.clip_bound,
            max_weight=c.max_weight,
            timeouts=StageTimeouts(
                c.train_timeout, c.stage_timeout, c.stage_timeout, c.stage_timeout
            ),
        )

    def _train_and_aggregate(
        self, round_id: int, base: ModelVersion, ids: list[int], timings: dict[str, float]
    ) -> tuple[np.ndarray, list[int], list[float]]:
        sa_cfg = self._secagg_config(ids)
        initial = self.store.versions()[0]
        weights_blob = self.store.get_blob(base.weights_sha256)
        header = {
            "kind": "train",
            "round": round_id,
            "version": base.version,
            "weights_sha256": base.weights_sha256,
            "train_files": {
                MANIFEST_NAME: initial.artifacts[MANIFEST_NAME],
                "train.tflite": initial.artifacts["train.tflite"],
            },
            "epochs": self.cfg.settings.local_epochs,
            "local_steps": self.cfg.settings.local_steps,
            "lr": self.client_lr(),
            "secagg": {
                "client_ids": list(sa_cfg.client_ids),
                "vector_lengths": list(sa_cfg.vector_lengths),
                "threshold": sa_cfg.t,
                "bit_width": sa_cfg.bit_width,
                "clip_bound": sa_cfg.clip_bound,
                "max_weight": sa_cfg.max_weight,
                "timeouts": [
                    sa_cfg.timeouts.advertise_keys,
                    sa_cfg.timeouts.share_keys,
                    sa_cfg.timeouts.masked_input_collection,
                    sa_cfg.timeouts.unmasking,
                ],
            },
        }
        for dev in ids:
            self._queue(dev, {**header, "client_id": dev}, weights_blob)
        server = ServerProtocol(sa_cfg)
        outbox = server.start()
        # The session is recorded before any key moves, under its fresh round nonce: a restart
        # finds it open and aborts it, and the next session draws a new nonce, hence new keys.
        session_hex = next(iter(outbox.values())).nonce.hex()  # type: ignore[union-attr]
        self.store.start_session(round_id, session_hex, len(ids), sa_cfg.t)
        stage_started = time.perf_counter()
        losses: list[float] = []
        train_seconds: list[float] = []
        self._emit({"event": "stage", "round": round_id, "stage": "train"})
        while True:
            for cid, msg in outbox.items():
                self._queue(cid, {"kind": "secagg", "round": round_id}, msg.to_bytes())
            if server.finished or self._stop.is_set():
                break
            try:
                dev, head, frame = self._inbox.get(timeout=0.05)
                self._accept(server, dev, head, frame, losses, train_seconds)
            except queue.Empty:
                pass
            stage = server.stage
            try:
                outbox = server.poll()
            except SecAggError as e:
                self._mark_dropped(server.dropped)
                self.store.finish_session(
                    session_hex, False, {k: v.name for k, v in server.dropped.items()}, str(e)
                )
                raise RoundFailed(f"secure aggregation aborted: {e}") from e
            if outbox and stage is not None:
                timings[f"secagg_{stage.name.lower()}"] = time.perf_counter() - stage_started
                stage_started = time.perf_counter()
                self._emit(
                    {
                        "event": "stage",
                        "round": round_id,
                        "stage": (server.stage.name.lower() if server.stage else "done"),
                        "survivors": len(ids) - len(server.dropped),
                    }
                )
        if self._stop.is_set() and not server.finished:
            server.abort("coordinator stopping")
            raise RoundFailed("coordinator stopping")
        if server.stage is None and not server.finished:
            raise RoundFailed(f"secure aggregation aborted: {server.aborted}")
        timings["secagg_unmasking"] = time.perf_counter() - stage_started
        if train_seconds:
            # The slowest device's own report: the training inside secagg_advertise_keys.
            timings["device_train_max"] = max(train_seconds)
        result = server.result
        self._mark_dropped(result.dropped)
        self.store.finish_session(session_hex, True, {k: v.name for k, v in result.dropped.items()})
        mean_update = result.mean()[0].astype(np.float32)
        base_w = np.frombuffer(weights_blob, dtype=np.float32)
        new = (base_w + np.float32(self.cfg.settings.server_lr) * mean_update).astype(np.float32)
        self._emit(
            {
                "event": "aggregated",
                "round": round_id,
                "survivors": len(result.survivors),
                "clipped": result.clip_count,
            }
        )
        return new, list(result.survivors), losses

    def _accept(
        self,
        server: ServerProtocol,
        dev: int,
        head: dict[str, Any],
        frame: Frame,
        losses: list[float],
        train_seconds: list[float],
    ) -> None:
        kind = head.get("kind")
        if frame.header.get("status") == "error":
            log.warning(
                "device %s reported an error in %s: %s",
                dev,
                kind,
                str(frame.header.get("error"))[:200],
            )
            return
        if kind == "train":
            loss = frame.header.get("loss")
            if isinstance(loss, (int, float)) and np.isfinite(loss):
                losses.append(float(loss))
            # A device's word, used for the timing report only; nonsense is ignored.
            seconds = frame.header.get("train_seconds")
            if isinstance(seconds, (int, float)) and 0 <= seconds < 86400:
                train_seconds.append(float(seconds))
        elif kind == "secagg":
            try:
                server.receive(frame.payload)
            except SecAggError as e:
                log.warning("device %s: secure-aggregation message rejected: %s", dev, e)

    def _evaluate(self, round_id: int, v: ModelVersion) -> tuple[FleetMetrics, list[dict]]:
        """Every live device evaluates the exact file it would deploy on its held-out names."""
        header = {
            "kind": "evaluate",
            "round": round_id,
            "version": v.version,
            "files": self._inference_files(v),
        }
        devices = [lk.device_id for lk in self.live_devices()]
        for dev in devices:
            self._queue(dev, header)
        reports: list[dict[str, Any]] = []
        waiting = set(devices)
        deadline = self._clock() + self.cfg.eval_timeout
        while waiting and self._clock() < deadline and not self._stop.is_set():
            try:
                dev, head, frame = self._inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            if head.get("kind") != "evaluate" or dev not in waiting:
                continue
            waiting.discard(dev)
            metrics = frame.header.get("metrics")
            try:
                if not isinstance(metrics, dict):
                    raise GateError("metrics missing")
                aggregate_device_metrics([metrics])  # validates this one report
            except (GateError, WireError) as e:
                log.warning("device %s sent invalid metrics: %s", dev, e)
                continue
            clean = {k: metrics[k] for k in ("n", "accuracy", "balanced_accuracy", "macro_f1")}
            self.store.add_device_metrics(round_id, dev, v.version, clean)
            reports.append(clean)
        if not reports:
            raise RoundFailed("no device returned valid evaluation metrics")
        return aggregate_device_metrics(reports), reports

    def _push_deploy(self, round_id: int, v: ModelVersion, timings: dict[str, float]) -> None:
        t = time.perf_counter()
        self._emit({"event": "stage", "round": round_id, "stage": "deploy", "version": v.version})
        with self._cv:
            for link in self._links.values():
                self._maybe_queue_deploy(link)
        deadline = self._clock() + self.cfg.deploy_timeout
        while self._clock() < deadline and not self._stop.is_set():
            # Wait for live devices only: one that stopped polling gets it when it is back.
            live = {lk.device_id for lk in self.live_devices()}
            with self._cv:
                pending = [
                    lk
                    for lk in self._links.values()
                    if lk.device_id in live
                    and any(h.get("kind") == "deploy" for _, h, _ in lk.tasks)
                ]
            if not pending:
                break
            with contextlib.suppress(queue.Empty):
                self._inbox.get(timeout=0.1)
        timings["deploy"] = time.perf_counter() - t


def weights_digest(flat: np.ndarray) -> str:
    """sha256 of a flat float32 weight vector's bytes (what devices verify)."""
    return hashlib.sha256(np.asarray(flat, np.float32).tobytes()).hexdigest()
