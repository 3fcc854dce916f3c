"""The train + secure-aggregation stage of a fleet round (Bonawitz et al., CCS 2017), and the
session loop (:func:`drive_session`) it shares with the evaluate stage's quality session
(``federated.quality``, issue 22).

Every participant gets a :class:`~edge.tasks.TrainTask` (the global weights and the session's
``SecAggConfig``), trains, and answers the four secure-aggregation stages through the broker;
:class:`~federated.secagg_server.ServerProtocol` checks every message and, if at least ``t``
devices survive, yields only the sum of the masked updates. FedAvg applies the mean update at
the server learning rate (McMahan et al., AISTATS 2017). No network or store code here beyond
the broker's queues and the session rows the runner asks for.

A device whose training fails says so (an error reply): it is dropped from the session at once,
so the stage closes on the others instead of waiting out the training timeout. So is a device
whose own secure-aggregation input fails (a non-finite update, any ``SecAggError`` of its side).

Binding (issue 19): a device's client id in the session is the id the coordinator knows from
its token (``Delivery.device_id``), the id its certificate names; a secure-aggregation message
whose body claims any other client id is refused and its sender dropped, never passed on as
that client's. The server is built against the fleet's pinned enrollment authority.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from edge.secagg import MalformedMessage, SecAggConfig, SecAggError, decode_message
from edge.tasks import SECAGG, TRAIN, ErrorReply, SecAggReply, SecAggTask, TrainReply, TrainTask
from federated.broker import Delivery, TaskBroker
from federated.secagg_result import AggregateResult
from federated.secagg_server import ServerProtocol

log = logging.getLogger("pifed.round")
EventSink = Callable[[dict[str, Any]], None]


class RoundFailed(RuntimeError):
    """A round could not complete (too few devices or survivors); nothing was revealed."""


class SessionLog(Protocol):
    """Where the stage records its secure-aggregation session (the store, in the fleet)."""

    def started(self, session_hex: str, n: int, threshold: int) -> None:
        """A session opened under this nonce."""

    def finished(
        self, session_hex: str, ok: bool, dropped: dict[int, str], reason: str | None
    ) -> None:
        """The session ended: completed or aborted, with who dropped at which stage."""


@dataclass
class SecureSum:
    """What the train + aggregate stage produced."""

    weights: np.ndarray
    survivors: list[int]
    dropped: dict[int, str]
    clipped: int
    losses: list[float] = field(default_factory=list)
    train_seconds: list[float] = field(default_factory=list)
    # device id -> the trainer its reply named (``TrainReply.trainer``: tflite or numpy)
    trainers: dict[int, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainPlan:
    """What every participant is asked to do this round."""

    round_id: int
    version: int
    weights: bytes
    weights_sha256: str
    train_files: dict[str, str]
    epochs: int
    local_steps: int | None
    lr: float
    server_lr: float


def _new_server(config: SecAggConfig, authority: bytes) -> ServerProtocol:
    """The session's server (the one place the library is built), against the fleet's pinned
    enrollment authority public key."""
    if len(authority) != 32:
        raise RoundFailed("the fleet pins no enrollment authority; enroll devices first")
    return ServerProtocol(config, authority=authority)


def train_and_aggregate(
    broker: TaskBroker,
    plan: TrainPlan,
    sa_cfg: SecAggConfig,
    session: SessionLog,
    stopped: Callable[[], bool],
    emit: EventSink,
    silence_timeout: float = float("inf"),
    *,
    authority: bytes,
) -> SecureSum:
    """Run the stage; raises :class:`RoundFailed` (the session aborted, nothing revealed).

    ``session.started`` is called before any key moves, so the session is recorded under its
    fresh nonce: a restart finds it open and aborts it. ``authority``: the enrollment
    authority's public key every participant's certificate is under.
    """
    server = _new_server(sa_cfg, authority)
    r = plan.round_id
    broker.open(r, (TRAIN, SECAGG))
    for dev in sa_cfg.client_ids:
        task = TrainTask(
            round=r,
            version=plan.version,
            weights_sha256=plan.weights_sha256,
            train_files=plan.train_files,
            epochs=plan.epochs,
            local_steps=plan.local_steps,
            lr=plan.lr,
            client_id=dev,
            secagg=sa_cfg,
        )
        broker.assign(dev, task, plan.weights)
    out = SecureSum(np.zeros(0, np.float32), [], {}, 0)
    emit({"event": "stage", "round": r, "stage": "train"})
    result = drive_session(
        broker,
        SessionRun(r, TRAIN, sa_cfg, session, stopped, emit, silence_timeout),
        server,
        lambda d: _train_reply(d, out),
        out.timings,
    )
    if out.train_seconds:
        # The slowest device's own report: the training inside secagg_advertise_keys.
        out.timings["device_train_max"] = max(out.train_seconds)
    out.dropped = {k: v.name for k, v in result.dropped.items()}
    out.survivors = list(result.survivors)
    out.clipped = int(result.clip_count)
    mean_update = result.mean()[0].astype(np.float32)
    base_w = np.frombuffer(plan.weights, dtype=np.float32)
    out.weights = (base_w + np.float32(plan.server_lr) * mean_update).astype(np.float32)
    emit(
        {
            "event": "aggregated",
            "round": r,
            "survivors": len(result.survivors),
            "clipped": result.clip_count,
        }
    )
    return out


@dataclass(frozen=True)
class SessionRun:
    """Where one secure-aggregation session runs: the round, the task kind whose replies come
    with it (``train`` or ``evaluate``), its config and log, and the stage's stop and events.

    ``task_kind`` also names the session in events and timings: training's stages are the
    round's ``stage`` events and ``secagg_*`` timings (as before issue 22); another kind's are
    ``<kind>_session`` events and ``<kind>_secagg_*`` timings. A device dropped from either
    session is not live until it polls again, so the deploy stage does not wait for one that
    is gone.
    """

    round_id: int
    task_kind: str
    config: SecAggConfig
    log: SessionLog
    stopped: Callable[[], bool]
    emit: EventSink
    silence_timeout: float = float("inf")


def drive_session(
    broker: TaskBroker,
    run: SessionRun,
    server: ServerProtocol,
    on_reply: Callable[[Delivery], None],
    timings: dict[str, float],
) -> AggregateResult:
    """Drive ``server`` through its stages over the broker until it yields the survivors' sum
    (returned) or aborts (:class:`RoundFailed`; nothing was revealed). The one session loop of
    the fleet: the training stage and the evaluate stage's quality session both run it.

    The caller has assigned each participant its task of ``run.task_kind`` (the session's
    first request queues behind it). Every reply of that kind goes to ``on_reply``; an error
    reply (to either kind) also drops its sender from the session at once. Each stage's
    seconds go into ``timings``.
    """
    r, sa_cfg, session = run.round_id, run.config, run.log
    kinds = (run.task_kind, SECAGG)
    broker.open(r, kinds)
    training = run.task_kind == TRAIN
    prefix = "secagg" if training else f"{run.task_kind}_secagg"
    event = "stage" if training else f"{run.task_kind}_session"
    outbox = server.start()
    session_hex = next(iter(outbox.values())).nonce.hex()  # type: ignore[union-attr]
    session.started(session_hex, len(sa_cfg.client_ids), sa_cfg.t)
    gone: set[int] = set()
    stage_started = time.perf_counter()
    while True:
        for cid, msg in outbox.items():
            broker.assign(cid, SecAggTask(r), msg.to_bytes())
        if server.finished or run.stopped():
            break
        delivery = broker.next_reply(r, kinds, timeout=0.05)
        if delivery is not None:
            _accept(server, delivery, on_reply)
        _drop_unreachable(broker, server, sa_cfg, run.silence_timeout, gone, run.emit, r)
        stage = server.stage
        try:
            _abort_if_certain(server, sa_cfg)
            outbox = server.poll()
        except SecAggError as e:
            broker.mark_dropped(server.dropped)
            session.finished(
                session_hex, False, {k: v.name for k, v in server.dropped.items()}, str(e)
            )
            raise RoundFailed(f"secure aggregation aborted: {e}") from e
        if outbox and stage is not None:
            timings[f"{prefix}_{stage.name.lower()}"] = time.perf_counter() - stage_started
            stage_started = time.perf_counter()
            run.emit(
                {
                    "event": event,
                    "round": r,
                    "stage": server.stage.name.lower() if server.stage else "done",
                    "survivors": len(sa_cfg.client_ids) - len(server.dropped),
                }
            )
    if run.stopped() and not server.finished:
        server.abort("coordinator stopping")
        raise RoundFailed("coordinator stopping")
    if server.stage is None and not server.finished:
        raise RoundFailed(f"secure aggregation aborted: {server.aborted}")
    timings[f"{prefix}_unmasking"] = time.perf_counter() - stage_started
    result = server.result
    broker.mark_dropped(result.dropped)
    session.finished(session_hex, True, {k: v.name for k, v in result.dropped.items()}, None)
    return result


def _drop_unreachable(
    broker: TaskBroker,
    server: ServerProtocol,
    sa_cfg: SecAggConfig,
    silence_timeout: float,
    gone: set[int],
    emit: EventSink,
    round_id: int,
) -> None:
    """Stop waiting for participants that are gone (``TaskBroker.unreachable``: silent past
    the live window while idle, or past the silence timeout while busy and heartbeating): they
    count as dropped at this stage now, not at its deadline. Each is announced once."""
    if server.stage is None:
        return
    left = [c for c in sa_cfg.client_ids if c not in server.dropped]
    for cid in broker.unreachable(left, silence_timeout):
        if cid not in gone:
            gone.add(cid)
            log.warning("device %s is gone (no contact): dropped from round %s", cid, round_id)
            emit({"event": "device_gone", "round": round_id, "device": cid})
        server.drop(cid)


def _abort_if_certain(server: ServerProtocol, sa_cfg: SecAggConfig) -> None:
    """Fewer participants left than the threshold: the session cannot finish, so it aborts
    now rather than when the stage's deadline passes (raises ``SecAggError``)."""
    if server.stage is None:
        return
    left = len(sa_cfg.client_ids) - len(server.dropped)
    if left < sa_cfg.t:
        reason = f"only {left} device(s) left, threshold is {sa_cfg.t}"
        server.abort(reason)
        raise SecAggError(f"{reason}; the round aborted and revealed nothing")


def _accept(server: ServerProtocol, d: Delivery, on_reply: Callable[[Delivery], None]) -> None:
    """One reply of the session's stage: a secure-aggregation message, an error (its sender
    leaves the session), or the stage's own reply (``on_reply``)."""
    reply = d.reply
    if isinstance(reply, SecAggReply):
        try:
            _check_sender(d.device_id, reply.message)
            server.receive(reply.message)
        except _ImpersonationError as e:
            log.warning("device %s dropped: %s", d.device_id, e)
            if server.stage is not None:
                server.drop(d.device_id)
        except SecAggError as e:
            log.warning("device %s: secure-aggregation message rejected: %s", d.device_id, e)
        return
    if isinstance(reply, ErrorReply):
        log.warning("device %s reported an error in %s: %s", d.device_id, d.task.kind, reply.error)
        if server.stage is not None:  # an id outside the session is ignored
            server.drop(d.device_id)
    on_reply(d)


def _train_reply(d: Delivery, out: SecureSum) -> None:
    """A training reply's figures (a device's word, for the timing report only)."""
    reply = d.reply
    if isinstance(reply, TrainReply):
        if np.isfinite(reply.loss):
            out.losses.append(reply.loss)
        # Nonsense is ignored.
        if 0 <= reply.train_seconds < 86400:
            out.train_seconds.append(reply.train_seconds)
        if reply.trainer is not None:
            out.trainers[d.device_id] = reply.trainer[:32]


class _ImpersonationError(SecAggError):
    """A device sent a secure-aggregation message as another client."""


def _check_sender(device_id: int, message: bytes) -> None:
    """The message's client id must be the authenticated device's (raises otherwise)."""
    try:
        claimed = getattr(decode_message(message), "client_id", device_id)
    except MalformedMessage:
        return  # the server refuses it with the reason; nothing is claimed
    if claimed != device_id:
        raise _ImpersonationError(
            f"its secure-aggregation message claims to be client {claimed}; a device takes "
            "part only as the id its token and certificate name"
        )
