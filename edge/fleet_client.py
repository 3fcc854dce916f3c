"""``pifed edge``: the process a Raspberry Pi runs to take part in the fleet.

It long-polls the coordinator for tasks and answers each one:

- ``train``: load the global weights into ``train.tflite``, run local SGD epochs on this Pi's
  names, keep ``update = new - global`` in memory, and report only the training loss;
- ``secagg``: answer the secure-aggregation stage with ``edge.secagg.ClientProtocol``: public
  keys, encrypted shares, the double-masked update, unmasking shares (``edge.secagg_member``:
  only as this Pi's certified device id; a failure of its own side leaves the round at once);
- ``evaluate``: fetch the candidate's exact deployable .tflite, evaluate it on this Pi's
  held-out names, report the metrics; when the task opens a quality session, its confusion
  counts become this Pi's input to that secure-aggregation sum (answered by the same
  ``secagg`` path), never part of the reply;
- ``deploy``: install a promoted version atomically under ``--state``.

Nothing else leaves the Pi. TensorFlow is never imported: the TFLite runtime, numpy, pycryptodome
and grpc only. Connection failures back off exponentially (with jitter) and reconnect, so the
client rides out a coordinator restart.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.device_identity import certificate_digest
from edge.evaluate import evaluate_with_confusion, labels_for_model
from edge.heartbeat import Beating, HeartbeatSupport
from edge.local_trainer import LocalTrainer
from edge.runtime import Classifier
from edge.secagg import SecAggError
from edge.secagg.identity import Identity
from edge.secagg_member import SecAggMember, check_binding
from edge.state import DeviceState
from edge.tasks import (
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
from edge.trainer_choice import choose_trainer
from edge.transport import (
    ChannelConfig,
    FleetChannel,
    TransportError,
    diagnose_tls,
    might_be_tls,
)
from edge.wire import Frame, WireError
from model.dataset import load_names
from model.manifest import MANIFEST_NAME, ManifestError, ModelManifest
from model.metrics import DEVICE_REPORT_FIELDS
from model.split import split_by_name

log = logging.getLogger("pifed.edge")
FATAL_CODES = ("UNAUTHENTICATED", "PERMISSION_DENIED")


class DeviceRejected(RuntimeError):
    """The coordinator refuses this device's token: retrying cannot help."""


@dataclass(frozen=True)
class EdgeConfig:
    """A Pi's local settings (its data and held-out share never leave it)."""

    holdout_frac: float = 0.2
    seed: int = 0
    poll_wait: float = 5.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    # Fault injection for tests and drills: the process dies (os._exit, no clean-up) right
    # after answering this task or secure-aggregation stage, like a Pi losing power.
    exit_after: str | None = None
    # Fault injection: the process dies of SIGSEGV inside this task kind, like a native crash
    # in a TFLite runtime (the supervisor then reports the task and restarts the Pi's worker).
    crash_in: str | None = None
    # Fault injection: the task of this kind never finishes (the Pi stays busy and heartbeats),
    # so a drill can kill -9 a Pi mid-task.
    hang_in: str | None = None
    # Seconds between heartbeats while a task runs (0: none); well inside the coordinator's
    # live window (20 s by default), so a busy Pi never looks gone.
    heartbeat_every: float = 2.0


class EdgeClient:
    """One Pi in the fleet."""

    def __init__(
        self,
        channel: ChannelConfig,
        data_dir: str | Path,
        state_dir: str | Path,
        cfg: EdgeConfig = EdgeConfig(),
        on_event: Callable[[dict[str, Any]], None] | None = None,
        identity: Identity | None = None,
    ) -> None:
        """``identity``: this Pi's signing key and certificate (``edge.device_identity``); a Pi
        without one can deploy and evaluate but refuses every training task."""
        self.channel_cfg = channel
        self.cfg = cfg
        self.state = DeviceState(state_dir)
        self._emit = on_event or (lambda e: None)
        ds = load_names(data_dir, min_languages=1)  # any subset of the fleet's languages
        train, hold = split_by_name(ds, cfg.holdout_frac, cfg.seed)
        self._ds = ds
        self._train_rows, self._hold_rows = train, hold
        self._trainers: dict[str, tuple[LocalTrainer, str]] = {}
        self.identity = identity
        self._member = SecAggMember(identity) if identity is not None else None
        self._cert_digest = certificate_digest(identity.certificate) if identity else None
        self._rng = np.random.default_rng(cfg.seed)
        self._jitter = random.Random(cfg.seed)
        self._heartbeats = HeartbeatSupport()
        self._work: dict[str, Path] = {}  # tag -> the work folder last used (kept by prune)
        self._tls_causes: set[str] = set()  # TLS failures already explained in the log
        # One handler per task type: a bug inside a handler is its own error, never mistaken
        # for an unknown task kind.
        self._handlers: dict[type, Callable[[FleetChannel, Any, bytes], Reply]] = {
            TrainTask: self._on_train,
            SecAggTask: self._on_secagg,
            EvaluateTask: self._on_evaluate,
            DeployTask: self._on_deploy,
        }
        self.check_state()

    def check_state(self) -> None:
        """At start: drop a damaged deployed or previous version (the coordinator re-sends the
        deployed one at the next poll), log each once, and clear out what is no longer needed."""
        for problem in self.state.repair():
            action = "dropped it; the coordinator sends the deployed version again"
            log.info("%s: %s", problem, action)
            self._emit({"event": "state_repaired", "problem": problem, "action": action})
        trains = sorted((self.state.root / "work").glob("train-*"), key=lambda p: p.stat().st_mtime)
        if trains:
            self._work["train"] = trains[-1]  # the train program most likely still in use
        self._prune()

    def _prune(self) -> None:
        """Keep the state folder bounded; a failure to delete never fails a task."""
        try:
            self.state.prune(self._work.values())
        except OSError as e:
            log.info("could not prune %s: %s", self.state.root, e)
        kept = {str(p) for p in self._work.values()}
        self._trainers = {k: v for k, v in self._trainers.items() if k in kept}

    def _platform(self) -> dict[str, str]:
        """What the operator's fleet view shows of this Pi (``PollRequest.platform``)."""
        return {
            "machine": platform.machine(),
            "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}",
            "trainer": next((name for _, name in self._trainers.values()), "not trained yet"),
        }

    # -- main loop -----------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None, max_polls: int | None = None) -> None:
        """Poll and answer tasks until ``stop`` is set; reconnect with backoff on failures."""
        stop = stop or threading.Event()
        backoff = self.cfg.backoff_initial
        polls = 0
        while not stop.is_set() and (max_polls is None or polls < max_polls):
            channel = FleetChannel(self.channel_cfg)
            try:
                while not stop.is_set() and (max_polls is None or polls < max_polls):
                    polls += 1
                    task = channel.poll(
                        PollRequest(
                            self.state.deployed_version(), self._cert_digest, self._platform()
                        ).header(),
                        self.cfg.poll_wait,
                    )
                    self._handle(channel, task)
                    backoff = self.cfg.backoff_initial
                    self._tls_causes.clear()  # connected: a TLS failure later is news again
            except TransportError as e:
                if e.code in FATAL_CODES:
                    raise DeviceRejected(str(e)) from e
                self._explain_tls(e)
                wait = min(backoff, self.cfg.backoff_max) * (0.5 + self._jitter.random())
                log.info("coordinator unreachable (%s); retrying in %.1f s", e.code, wait)
                self._emit({"event": "reconnect", "code": e.code, "wait": wait})
                stop.wait(wait)
                backoff = min(backoff * 2, self.cfg.backoff_max)
            finally:
                channel.close()

    def _explain_tls(self, e: TransportError) -> None:
        """gRPC says only UNAVAILABLE when the TLS handshake fails: find out why with a one-off
        handshake, and say it once per cause, with the fix."""
        if e.code != "UNAVAILABLE" or self.channel_cfg.insecure or not might_be_tls(str(e)):
            return
        problem = diagnose_tls(self.channel_cfg)
        if problem is None or problem.cause in self._tls_causes:
            return
        self._tls_causes.add(problem.cause)
        log.info("%s", problem.message)
        self._emit({"event": "tls_error", "cause": problem.cause, "message": problem.message})

    def _handle(self, channel: FleetChannel, frame: Frame) -> None:
        """Answer one task. A task that fails here is reported to the coordinator as an error
        reply naming the failure, so its round can go on without this Pi at once."""
        try:
            task = decode_task(frame)
        except WireError as e:
            log.warning("task not understood: %s", e)
            if isinstance(frame.header.get("task"), str):
                head, payload = reply_frame(frame.header["task"], ErrorReply(f"WireError: {e}"))
                channel.submit(head, payload)
            return
        if isinstance(task, IdleTask):
            return
        task_id = frame.get("task", str)
        handler = self._handlers[type(task)]
        reply: Reply
        self.state.mark_inflight(task_id, task.kind)
        try:
            if self.cfg.crash_in == task.kind:
                self._emit({"event": "fault_crash", "in": task.kind})
                os.kill(os.getpid(), signal.SIGSEGV)  # a native crash, as the drill wants
            with Beating(channel, task_id, self.cfg.heartbeat_every, self._heartbeats):
                if self.cfg.hang_in == task.kind:
                    self._emit({"event": "fault_hang", "in": task.kind})
                    threading.Event().wait()  # busy forever (heartbeating), until killed
                reply = handler(channel, task, frame.payload)
        except (SecAggError, ManifestError, WireError, ValueError, KeyError) as e:
            log.warning("task %s failed: %s: %s", task.kind, type(e).__name__, e)
            reply = ErrorReply(f"{type(e).__name__}: {e}")
            if task.kind in ("train", "secagg") and self._member is not None:
                self._member.leave()  # this Pi is out of the round: nothing of it is kept
        head, payload = reply_frame(task_id, reply)
        self._emit(
            {"event": task.kind, **{k: v for k, v in head.items() if k not in ("metrics", "task")}}
        )
        channel.submit(head, payload)
        self.state.clear_inflight()
        stage = head.get("stage")
        if self.cfg.exit_after is not None and self.cfg.exit_after in (task.kind, stage):
            self._emit({"event": "fault_exit", "after": self.cfg.exit_after})
            os._exit(137)

    # -- tasks ---------------------------------------------------------------------------------
    def _files(self, channel: FleetChannel, files: dict[str, str]) -> dict[str, bytes]:
        out = {}
        for name, digest in files.items():
            data = self.state.cached(digest)
            if data is None:
                data = channel.fetch(digest)
                self.state.cache_put(digest, data)
            out[name] = data
        return out

    def _folder(self, channel: FleetChannel, files: dict[str, str], tag: str) -> Path:
        key = hashlib.sha256(repr(sorted(files.items())).encode()).hexdigest()[:16]
        folder = self.state.root / "work" / f"{tag}-{key}"
        if not (folder / MANIFEST_NAME).is_file():
            self.state.materialise(folder, self._files(channel, files))
        self._work[tag] = folder
        return folder

    def _names_labels(
        self, rows: np.ndarray, manifest: ModelManifest
    ) -> tuple[list[str], np.ndarray]:
        sub = self._ds.subset(rows)
        return list(sub.names), labels_for_model(sub, manifest.languages)

    def _on_train(self, channel: FleetChannel, task: TrainTask, payload: bytes) -> TrainReply:
        if self._member is None:
            raise WireError(
                "this Pi has no device identity, so it cannot take part in secure aggregation: "
                "run `pifed edge` with --identity DIR"
            )
        check_binding(task.client_id, self._member.identity)  # before any training time
        folder = self._folder(channel, task.train_files, "train")
        trainer, trainer_name = self._trainer(folder)
        if hashlib.sha256(payload).hexdigest() != task.weights_sha256:
            raise WireError("global weights do not match their announced sha256")
        global_w = np.frombuffer(payload, dtype=np.float32).copy()
        trainer.set_weights(global_w)  # checks the length against the model
        names, labels = self._names_labels(self._train_rows, trainer.manifest)
        ids = trainer.manifest.vocab.encode(names)
        t = time.perf_counter()
        lr, steps = task.lr, task.local_steps
        losses = trainer.train_epochs(ids, labels, task.epochs, lr, self._rng, max_steps=steps)
        seconds = time.perf_counter() - t
        # The update's weight: the distinct names it was trained on (all of them, or what a
        # step cap reached).
        seen = len(names) if steps is None else min(len(names), steps * trainer.batch)
        self._member.begin(task, trainer.flat_weights() - global_w, seen)
        return TrainReply(
            loss=losses[-1],
            train_seconds=round(seconds, 3),
            lr=lr,
            local_steps=steps,
            examples=seen,
            trainer=trainer_name,
        )

    def _trainer(self, folder: Path) -> tuple[LocalTrainer, str]:
        """The trainer for this train program, chosen once (a probe in a child process)."""
        key = str(folder)
        if key not in self._trainers:
            choice = choose_trainer(folder)
            log.info("trainer: %s (%s)", choice.name, choice.reason)
            self._emit({"event": "trainer", "trainer": choice.name, "reason": choice.reason})
            self._trainers[key] = (choice.build(folder), choice.name)
        return self._trainers[key]

    def _on_secagg(self, channel: FleetChannel, task: SecAggTask, payload: bytes) -> SecAggReply:
        if self._member is None:
            raise WireError("secure-aggregation request without a task that opened a session")
        return self._member.answer(payload)

    def _on_evaluate(
        self, channel: FleetChannel, task: EvaluateTask, payload: bytes
    ) -> EvaluateReply:
        folder = self._folder(channel, task.files, "eval")
        tflite = next((n for n in task.files if n.endswith(".tflite")), None)
        if tflite is None:
            raise WireError("evaluate task names no .tflite file")
        clf = Classifier(folder / tflite)
        names, labels = self._names_labels(self._hold_rows, clf.manifest)
        m, counts = evaluate_with_confusion(clf, names, labels)
        self._prune()
        self._join_quality(task, counts)
        return EvaluateReply(task.version, {k: m[k] for k in DEVICE_REPORT_FIELDS})

    def _join_quality(self, task: EvaluateTask, counts: np.ndarray) -> None:
        """Take part in the task's quality session with these counts, if it opens one. A
        failure here costs only the fleet quality figure (this Pi is dropped from that session
        when it cannot answer), never the metrics the gate uses: logged, not raised."""
        if task.quality is None:
            return
        if self._member is None:
            log.info("no device identity: this Pi stays out of the quality session")
            return
        try:
            self._member.join_quality(task, counts)
        except (SecAggError, ValueError) as e:
            log.warning("stays out of the quality session: %s: %s", type(e).__name__, e)

    def _on_deploy(self, channel: FleetChannel, task: DeployTask, payload: bytes) -> DeployReply:
        self.state.install(task.version, self._files(channel, task.files))
        self._prune()
        return DeployReply(task.version)
