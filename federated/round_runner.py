"""The round runner: train -> secure aggregation -> FedAvg -> export -> evaluate -> gate -> deploy.

Each stage is a method that reads the replies of its own kind from the broker and writes to the
store at its boundary, so a crash between stages leaves the store at the last boundary:

1. **wait** for ``min_devices`` live devices; the round row is written with its participants;
2. **train + aggregate** (``federated.secure_round``): the session row is written before any key
   moves, and closed with who dropped;
3. **export** the FedAvg weights as the candidate's TFLite files; the version row is written;
4. **evaluate** (``federated.evaluate_stage``): every live device scores the exact file it
   would deploy on its own held-out names; each device's metrics row is written as it arrives;
   the round's participants also sum their confusion counts by secure aggregation and the
   fleet total is stored for the version (a failed quality session is logged, never fatal);
5. **gate** (``federated.gate``): the verdict and, on promotion, the deployment row in one
   transaction;
6. **deploy**: the promoted version is pushed to every live device;

and the round row is closed with its outcome and timings. The next round trains from the newest
version in the store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edge.secagg import CertificateError, SecAggConfig, SecAggError, StageTimeouts
from edge.secagg.identity import verify_certificate
from edge.tasks import EVALUATE, SECAGG, TRAIN
from federated import evaluate_stage
from federated.broker import DeviceLink, TaskBroker
from federated.evaluate_stage import EvaluateContext
from federated.exporter import CandidateExporter
from federated.fleet_config import FleetConfig
from federated.gate import FleetMetrics, GateError, aggregate_device_metrics, decide
from federated.secure_round import RoundFailed, SecureSum, TrainPlan, train_and_aggregate
from federated.store import ModelVersion, Store
from model.manifest import MANIFEST_NAME, ModelManifest

log = logging.getLogger("pifed.coordinator")
EventSink = Callable[[dict[str, Any]], None]
# Seconds between "waiting for devices" reports while nothing changes.
WAIT_REPORT_EVERY = 10.0


class _StoreSessionLog:
    """Secure-aggregation sessions as rows of the store."""

    def __init__(self, store: Store, round_id: int) -> None:
        self._store, self._round = store, round_id

    def started(self, session_hex: str, n: int, threshold: int) -> None:
        self._store.start_session(self._round, session_hex, n, threshold)

    def finished(
        self, session_hex: str, ok: bool, dropped: dict[int, str], reason: str | None
    ) -> None:
        self._store.finish_session(session_hex, ok, dropped, reason or "")


def deployable_files(v: ModelVersion, kind: str) -> dict[str, str]:
    """The manifest and the ``kind`` artifact of a version, by sha256 (what a Pi installs)."""
    kind_file = f"model_{kind}.tflite"
    if kind_file not in v.artifacts:
        raise RoundFailed(f"version {v.version} has no {kind_file}")
    return {MANIFEST_NAME: v.artifacts[MANIFEST_NAME], kind_file: v.artifacts[kind_file]}


class RoundRunner:
    """Runs rounds over a broker and a store; one thread calls :meth:`run_round`."""

    def __init__(
        self,
        store: Store,
        broker: TaskBroker,
        cfg: FleetConfig,
        template: ModelManifest,
        train_files: dict[str, str],
        emit: EventSink,
        stop: threading.Event,
        clock: Callable[[], float] = time.monotonic,
        exporter: CandidateExporter | None = None,
    ) -> None:
        self.store = store
        self.broker = broker
        self.cfg = cfg
        self.template = template
        self._train_files = dict(train_files)
        self._emit = emit
        self._stop = stop
        self._clock = clock
        self._exporter = exporter
        # The completed-round count this run aims at: the schedule's length. The position in
        # it is the store's completed count, so a restart resumes the schedule where it was.
        self.target_rounds = cfg.target_rounds(store.completed_rounds())

    @property
    def exporter(self) -> CandidateExporter:
        """The TFLite exporter, built on first use (it loads TensorFlow)."""
        if self._exporter is None:
            self._exporter = CandidateExporter(self.template)
        return self._exporter

    def client_lr(self) -> float:
        """The on-device learning rate of the current round under the schedule: round number
        (completed rounds + 1) of ``target_rounds``, from the store, so restarts agree."""
        index = self.store.completed_rounds() + 1
        return self.cfg.settings.client_lr_at(index, max(self.target_rounds, index))

    # -- the round -----------------------------------------------------------------------------
    def run_round(self) -> dict[str, Any]:
        """One full round; returns its summary (also stored)."""
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        try:
            links = self._certified(self._wait_devices())
        except RoundFailed as e:
            self._emit({"event": "round_failed", "reason": str(e)})
            return {"ok": False, "reason": str(e)}
        base = self.store.latest_version()
        assert base is not None  # the coordinator stores version 1 before any round
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
            agg = self._train_and_aggregate(round_id, base, ids)
            timings.update(agg.timings)
            # A dropped device's leftover secure-aggregation task must not sit in front of its
            # evaluation task: the stage is over for everyone.
            self.broker.cancel(round_id, (TRAIN, SECAGG))
            t = time.perf_counter()
            version = self._export(round_id, base, agg)
            timings["export"] = time.perf_counter() - t
            candidate = self.store.version(version)
            self._emit({"event": "stage", "round": round_id, "stage": "evaluate"})
            t = time.perf_counter()
            fleet, reports = self._evaluate(round_id, candidate, ids, timings)
            timings["evaluate"] = time.perf_counter() - t
            decision = self._gate(version, fleet)
            if decision.promote:
                t = time.perf_counter()
                self._deploy(round_id, candidate)
                timings["deploy"] = time.perf_counter() - t
            timings["total"] = time.perf_counter() - t0
            self.store.finish_round(
                round_id,
                True,
                decision.reason,
                new_version=version,
                survivors=agg.survivors,
                timings=timings,
            )
            summary = {
                "ok": True,
                "round": round_id,
                "version": version,
                "devices": len(ids),
                "survivors": len(agg.survivors),
                "train_loss": float(np.mean(agg.losses)) if agg.losses else None,
                "fleet": fleet.to_dict(),
                "promoted": decision.promote,
                "reason": decision.reason,
                "timings": timings,
                "device_reports": len(reports),
                # which trainer each device's training reply named (device id -> name)
                "trainers": {str(k): v for k, v in sorted(agg.trainers.items())},
            }
            self._emit({"event": "round_end", **summary})
            return summary
        except (RoundFailed, SecAggError, GateError) as e:
            self.store.finish_round(round_id, False, f"{type(e).__name__}: {e}", timings=timings)
            self._emit({"event": "round_failed", "round": round_id, "reason": str(e)})
            return {"ok": False, "round": round_id, "reason": f"{type(e).__name__}: {e}"}
        finally:
            self.broker.cancel(round_id, (TRAIN, SECAGG, EVALUATE))

    # -- stages --------------------------------------------------------------------------------
    def _wait_devices(self) -> list[DeviceLink]:
        """Until ``min_devices`` are live. Says so at a human pace: when who is connected
        changes, else every ``WAIT_REPORT_EVERY`` seconds, naming the enrolled devices that
        are not connected."""
        deadline = self._clock() + self.cfg.wait_devices_timeout
        said: tuple[frozenset[int], float] | None = None
        while not self._stop.is_set():
            live = self.broker.live_devices()
            if len(live) >= self.cfg.min_devices:
                return live
            if self._clock() > deadline:
                raise RoundFailed(
                    f"only {len(live)} device(s) connected after {self.cfg.wait_devices_timeout}"
                    f" s; {self.cfg.min_devices} needed"
                )
            ids = frozenset(lk.device_id for lk in live)
            now = self._clock()
            if said is None or said[0] != ids or now - said[1] >= WAIT_REPORT_EVERY:
                said = (ids, now)
                missing = [
                    d.name for d in self.store.devices() if not d.revoked and d.id not in ids
                ]
                self._emit(
                    {
                        "event": "waiting",
                        "devices": len(live),
                        "needed": self.cfg.min_devices,
                        "connected": [lk.name for lk in live],
                        "missing": missing,
                    }
                )
            self._stop.wait(0.2)
        raise RoundFailed("stopped")

    def secagg_config(self, ids: list[int]) -> SecAggConfig:
        """The session's configuration: who takes part, the threshold, the quantisation."""
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

    def _train_and_aggregate(self, round_id: int, base: ModelVersion, ids: list[int]) -> SecureSum:
        s = self.cfg.settings
        plan = TrainPlan(
            round_id=round_id,
            version=base.version,
            weights=self.store.get_blob(base.weights_sha256),
            weights_sha256=base.weights_sha256,
            train_files=self._train_files,
            epochs=s.local_epochs,
            local_steps=s.local_steps,
            lr=self.client_lr(),
            server_lr=s.server_lr,
        )
        return train_and_aggregate(
            self.broker,
            plan,
            self.secagg_config(ids),
            _StoreSessionLog(self.store, round_id),
            self._stop.is_set,
            self._emit,
            self.cfg.silence_timeout,
            authority=self._authority(),
        )

    def _authority(self) -> bytes:
        """The enrollment authority the fleet pins (every participant's certificate is under
        it)."""
        authority = self.store.authority()
        if authority is None:
            raise RoundFailed(
                "the fleet database pins no enrollment authority: enroll the devices with "
                "`pifed enroll NAME --public-key HEX --authority-key KEY`"
            )
        return authority

    def _certified(self, links: list[DeviceLink]) -> list[DeviceLink]:
        """The connected devices whose stored certificate is valid now: under the pinned
        authority, for their own id, not revoked. One revoked (or re-enrolled) since it
        connected is left out of the round and named; too few left fails the round."""
        authority = self._authority()
        kept = []
        for lk in links:
            device = self.store.device_by_id(lk.device_id)
            cert = self.store.certificate(lk.device_id)
            try:
                if device is None or device.revoked is not None or cert is None:
                    raise CertificateError("revoked, or its enrollment is not finished")
                verify_certificate(authority, cert, device_id=lk.device_id)
            except CertificateError as e:
                log.warning("device %s (%s) left out of the round: %s", lk.device_id, lk.name, e)
                self._emit({"event": "device_refused", "device": lk.device_id, "reason": str(e)})
                continue
            kept.append(lk)
        if len(kept) < self.cfg.min_devices:
            raise RoundFailed(
                f"only {len(kept)} connected device(s) hold a valid certificate; "
                f"{self.cfg.min_devices} needed"
            )
        return kept

    def _export_kinds(self) -> tuple[str, ...]:
        kind = self.cfg.deploy_kind
        return ("float",) if kind == "float" else ("float", kind)

    def _export(self, round_id: int, base: ModelVersion, agg: SecureSum) -> int:
        files = self.exporter.export(agg.weights, round_id, kinds=self._export_kinds())
        return self.store.add_version(
            agg.weights.tobytes(), files, "candidate", parent=base.version, round_id=round_id
        )

    def _evaluate(
        self, round_id: int, v: ModelVersion, members: list[int], timings: dict[str, float]
    ) -> tuple[FleetMetrics, list[dict]]:
        """Every live device evaluates the exact file it would deploy on its held-out names;
        the round's certified ``members`` among them also sum their confusion counts in the
        quality session (``federated.evaluate_stage``)."""
        ctx = EvaluateContext(
            self.cfg,
            tuple(members),
            self._authority(),
            tuple(self.template.languages),
            self._stop.is_set,
            self._emit,
            self._clock,
        )
        files = deployable_files(v, self.cfg.deploy_kind)
        reports = evaluate_stage.evaluate(self.broker, self.store, ctx, round_id, v, files, timings)
        return aggregate_device_metrics(reports), reports

    def _gate(self, version: int, fleet: FleetMetrics) -> Any:
        deployed = self.store.deployed()
        deployed_metrics = (
            FleetMetrics(**deployed.fleet_metrics) if deployed and deployed.fleet_metrics else None
        )
        decision = decide(self.cfg.settings.gate, fleet, deployed_metrics)
        self.store.judge_version(version, decision.promote, decision.reason, fleet.to_dict())
        return decision

    def _deploy(self, round_id: int, v: ModelVersion) -> None:
        """Push the promoted version; wait (bounded) until the live devices installed it."""
        self._emit({"event": "stage", "round": round_id, "stage": "deploy", "version": v.version})
        self.broker.push_deployment()
        deadline = self._clock() + self.cfg.deploy_timeout
        while self._clock() < deadline and not self._stop.is_set():
            # Wait for live devices only: one that stopped polling gets it when it is back.
            live = [lk.device_id for lk in self.broker.live_devices()]
            # A busy, heartbeating device silent past the silence timeout is gone too (as in
            # the other stages), not only once its last contact leaves the live window.
            gone = self.broker.unreachable(live, self.cfg.silence_timeout)
            if gone:
                log.warning("device(s) %s gone during deploy (no contact)", gone)
                self.broker.mark_dropped(gone)
                live = [d for d in live if d not in gone]
            if not self.broker.deploys_pending(live):
                break
            self._stop.wait(0.1)
