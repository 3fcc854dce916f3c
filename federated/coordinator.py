"""The fleet coordinator: a task broker and a round runner over one store.

- :class:`~federated.broker.TaskBroker` owns device links, long-polls, submissions and one reply
  queue per (round, task kind);
- :class:`~federated.round_runner.RoundRunner` runs train -> secure aggregation -> FedAvg ->
  export -> evaluate -> gate -> deploy as explicit stages, writing the store at each boundary;
- this module wires them to the store: version 1 (the template model) on first start, the
  fleet's deployed version for the broker, blob look-ups for devices, and the restart rule (a
  round a crash left running is aborted).

What reaches the coordinator from a Pi: public keys, encrypted shares, the masked update, its
training loss and its evaluation metrics. Never a name, never an unmasked update. No transport
code here: ``federated.service`` binds :meth:`Coordinator.poll`, :meth:`submit` and :meth:`fetch`
to gRPC.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.tasks import DeployTask
from edge.wire import Frame
from federated.broker import DeviceLink, StaleTask, TaskBroker
from federated.exporter import CandidateExporter
from federated.fleet_config import FleetConfig
from federated.round_runner import RoundRunner, deployable_files
from federated.secure_round import RoundFailed
from federated.store import DamagedBlob, Device, ModelVersion, Store, StoreError
from model.manifest import MANIFEST_NAME, ModelManifest

__all__ = [
    "CertificateRefused",
    "Coordinator",
    "FleetConfig",
    "RoundFailed",
    "StaleTask",
    "UnknownBlob",
]

log = logging.getLogger("pifed.coordinator")
EventSink = Callable[[dict[str, Any]], None]
# What every Pi trains with: the template's train program and manifest (version 1's blobs).
TRAIN_FILES = (MANIFEST_NAME, "train.tflite")
# A run tries at most this many rounds per missing completed round before giving up.
FAILED_ROUNDS_PER_MISSING = 3


class UnknownBlob(ValueError):
    """A device asked for a blob that no model version references."""


class CertificateRefused(PermissionError):
    """A device's poll names no certificate, or not the one stored for it (it holds another
    device's, or an older enrollment's): it gets no task."""


def check_presented_certificate(device: Device, header: dict[str, Any]) -> None:
    """The certificate digest a poll names must be the one stored for the authenticated
    device (``Store.authenticate`` already refused a device with none)."""
    presented = header.get("certificate")
    stored = hashlib.sha256(device.certificate).hexdigest() if device.certificate else None
    if presented is None:
        raise CertificateRefused(
            f"device {device.name!r} presented no device certificate: run `pifed edge` with "
            "--identity DIR holding its device.key and device.cert (pifed with device identities)"
        )
    if presented != stored:
        raise CertificateRefused(
            f"device {device.name!r} (id {device.id}) presented a certificate that is not the "
            f"one enrolled for it (sha256 {str(presented)[:16]}..., enrolled "
            f"{(stored or 'none')[:16]}...): it holds another device's or an older device.cert; "
            f"copy {device.name}'s own certificate from its enrollment to that Pi"
        )


class Coordinator:
    """One fleet: its store, broker and runner; the gRPC service calls poll, submit and fetch."""

    def __init__(
        self,
        store: Store,
        model_dir: str,
        cfg: FleetConfig,
        on_event: EventSink | None = None,
        clock: Callable[[], float] = time.monotonic,
        exporter: CandidateExporter | None = None,
    ) -> None:
        self.store = store
        self.cfg = cfg
        self._emit = on_event or (lambda e: None)
        self._stop = threading.Event()
        self.template = ModelManifest.load(model_dir)
        self._check_blobs()  # before anything is written: a broken store is left as it is
        aborted = store.abort_unfinished_rounds("coordinator restarted; round aborted")
        if aborted:
            log.warning("aborted rounds %s left running by a previous coordinator", aborted)
            self._emit({"event": "restart", "aborted_rounds": aborted})
        initial = self._ensure_initial_version(model_dir)
        self.broker = TaskBroker(cfg.poll_wait, cfg.live_window, self._deployment, clock)
        self.runner = RoundRunner(
            store,
            self.broker,
            cfg,
            self.template,
            {name: initial.artifacts[name] for name in TRAIN_FILES},
            self._emit,
            self._stop,
            clock,
            # Without TensorFlow where model_dir has a verified template map (float, dynamic).
            exporter if exporter is not None else CandidateExporter(self.template, model_dir),
        )

    # -- setup ---------------------------------------------------------------------------------
    def _check_blobs(self) -> None:
        """The deployed version (served to every Pi), the newest (the next round trains from
        it) and version 1 (its train program) must have every blob, intact: a missing or
        altered one is a StoreError that says which and what to do, at start, not mid-round."""
        store = self.store
        wanted = {
            "deployed": store.deployed(),
            "newest": store.latest_version(),
            "initial": store.initial_version(),
        }
        for role, v in wanted.items():
            if v is None:
                continue
            try:
                store.check_blobs(v)
            except DamagedBlob as e:
                fix = (
                    f"`pifed rollback --db {store.path} VERSION` to a version whose blobs are "
                    "intact (see `pifed models`), or restore the folder from a backup"
                    if role == "deployed"
                    else "restore the folder from a backup"
                )
                raise StoreError(f"the {role} {e}; nothing was changed. Fix: {fix}") from e

    def _ensure_initial_version(self, model_dir: str) -> ModelVersion:
        """Version 1 is the template model; the train artifact and its manifest are blobs."""
        initial = self.store.initial_version()
        if initial is not None:
            return initial
        from edge.trainer import OnDeviceTrainer

        weights = OnDeviceTrainer(model_dir).flat_weights()
        files = {
            p.name: p.read_bytes()
            for p in Path(model_dir).iterdir()
            if p.suffix == ".tflite" or p.name == MANIFEST_NAME
        }
        return self.store.version(self.store.add_version(weights.tobytes(), files, "initial"))

    def _deployment(self) -> DeployTask | None:
        """The version the fleet should run (the store's latest deployment), as a task."""
        v = self.store.deployed()
        if v is None:
            return None
        return DeployTask(v.version, deployable_files(v, self.cfg.deploy_kind))

    @property
    def exporter(self) -> CandidateExporter:
        """The candidate exporter the runner uses."""
        return self.runner.exporter

    # -- device-facing calls (thread-safe) ------------------------------------------------------
    def poll(self, device: Device, header: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        """Long-poll: the device's open task, or ``idle`` after ``poll_wait`` seconds; a device
        presenting a certificate that is not its own gets none (``CertificateRefused``)."""
        check_presented_certificate(device, header)
        task, task_id, payload = self.broker.poll(device.id, device.name, header)
        if not task_id:
            self.store.touch(device.id)
            return task.header(), b""
        return {**task.header(), "task": task_id}, payload

    def submit(self, device: Device, frame: Frame) -> None:
        """Accept the answer to the device's open task; anything else is ``StaleTask``."""
        self.broker.submit(device.id, device.name, frame)

    def heartbeat(self, device: Device, header: dict[str, Any]) -> None:
        """A busy device is alive: it counts as in contact, as a poll does."""
        self.broker.heartbeat(device.id, device.name)

    def fetch(self, digest: str) -> bytes:
        """A blob that some model version references (weights, artifacts, manifests)."""
        if not self.store.references_blob(digest):
            raise UnknownBlob(f"no model version references blob {digest[:16]!r}")
        return self.store.get_blob(digest)

    def live_devices(self) -> list[DeviceLink]:
        """Devices that polled within the live window (and since they last dropped out)."""
        return self.broker.live_devices()

    def client_lr(self) -> float:
        """The on-device learning rate of the current round under the schedule."""
        return self.runner.client_lr()

    # -- rounds --------------------------------------------------------------------------------
    def run_round(self) -> dict[str, Any]:
        """One full round; returns its summary (also stored)."""
        return self.runner.run_round()

    def run(self) -> list[dict[str, Any]]:
        """Run rounds until the store holds the target count of completed rounds
        (``--rounds N`` in all, or ``--more-rounds K`` beyond those at start).

        A failed round is recorded and another starts; after ``FAILED_ROUNDS_PER_MISSING`` times
        the missing count of attempts the run gives up (the fleet is not there), so a stuck
        fleet does not spin forever.
        """
        completed = self.store.completed_rounds()
        target = self.runner.target_rounds
        missing = max(0, target - completed)
        self._emit({"event": "rounds_plan", "completed": completed, "target": target})
        summaries: list[dict[str, Any]] = []
        attempts = FAILED_ROUNDS_PER_MISSING * missing
        while attempts > 0 and not self._stop.is_set():
            if self.store.completed_rounds() >= target:
                break
            attempts -= 1
            summaries.append(self.run_round())
        if self.store.completed_rounds() < target and not self._stop.is_set():
            log.warning(
                "gave up after %d attempts: %d of %d rounds completed",
                len(summaries),
                self.store.completed_rounds(),
                target,
            )
        return summaries

    def stop(self) -> None:
        """Ask the round loop to stop at the next check and release every long-poll."""
        self._stop.set()
        self.broker.stop()
