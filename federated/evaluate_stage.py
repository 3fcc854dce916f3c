"""The evaluate stage of a fleet round: per-device metrics for the gate, and the fleet quality.

Every live device scores the exact file it would deploy on its own held-out names and reports
``n`` and the three scores (``model.metrics.DEVICE_REPORT_FIELDS``); the gate uses those, as
before issue 22.

**Fleet quality (issue 22).** The round's certified participants that evaluate also join a
second secure-aggregation session, driven by the same loop as training
(``federated.secure_round.drive_session``), whose input is each Pi's confusion counts
(true x predicted language, one vector of L*L integers). The coordinator learns only the sum
over the session's survivors and stores only that total per version. One Pi's counts would
tell the coordinator which languages that Pi holds (its label mix), so they never travel in the
clear. The sum is exact: ``scale`` 1, ``max_weight`` 1 and ``clip_bound`` :data:`MAX_COUNT`
make every count its own quantisation level (stochastic rounding leaves an integral level as
it is), and ``bit_width`` 64 leaves room for ``n * MAX_COUNT`` far beyond any fleet, so the
ring sum cannot wrap. A quality session that aborts (fewer than ``t`` Pis left) or cannot start
(fewer than 2 certified evaluators) leaves the version without a fleet quality figure, logged;
it never fails the round or the gate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.secagg import SecAggConfig, SecAggError, StageTimeouts
from edge.tasks import EVALUATE, SECAGG, ErrorReply, EvaluateReply, EvaluateTask
from federated.broker import Delivery, TaskBroker
from federated.fleet_config import FleetConfig
from federated.gate import GateError, aggregate_device_metrics
from federated.secagg_result import AggregateResult
from federated.secure_round import RoundFailed, SessionRun, _new_server, drive_session
from federated.store import ModelVersion, Store
from model.metrics import DEVICE_REPORT_FIELDS

log = logging.getLogger("pifed.coordinator")
EventSink = Callable[[dict[str, Any]], None]

#: The largest confusion count one Pi may contribute (a held-out set of up to 16.7 M names).
MAX_COUNT = 2**24
#: Ring words of the quality session: n * MAX_COUNT < 2^63 for any n below 2^39.
QUALITY_BIT_WIDTH = 64


def quality_config(
    ids: list[int], n_languages: int, timeouts: StageTimeouts, threshold: int | None = None
) -> SecAggConfig:
    """The quality session's config: the evaluators, one vector of ``n_languages**2`` counts,
    each summed exactly (the module docstring says why these numbers). ``threshold``: the
    fleet's own (``FleetConfig.threshold``) when it is valid for these evaluators, else the
    safe default for their number."""

    def build(t: int | None) -> SecAggConfig:
        return SecAggConfig(
            client_ids=tuple(ids),
            vector_lengths=(n_languages * n_languages,),
            threshold=t,
            bit_width=QUALITY_BIT_WIDTH,
            clip_bound=float(MAX_COUNT),
            max_weight=1,
            scale=1.0,
            timeouts=timeouts,
        )

    if threshold is not None:
        try:
            return build(threshold)
        except ValueError:  # more than the evaluators, or below the safe floor for them
            pass
    return build(None)


def fleet_counts(result: AggregateResult, n_languages: int) -> np.ndarray:
    """The survivors' summed confusion counts as an ``L x L`` int64 matrix; raises
    :class:`RoundFailed` if the sum is not exactly integral (a Pi sent words not produced by
    its counts), so an inexact figure is never stored."""
    total = np.asarray(result.weighted_sum[0], dtype=np.float64)
    counts = np.rint(total)
    if result.clip_count != 0 or result.weight_sum != len(result.survivors):
        raise RoundFailed(
            f"the quality sum is not exact (clip count {result.clip_count}, weight sum "
            f"{result.weight_sum} for {len(result.survivors)} Pis); not stored"
        )
    if not np.array_equal(counts, total) or counts.min(initial=0) < 0:
        raise RoundFailed("the quality sum has fractional or negative counts; not stored")
    return counts.astype(np.int64).reshape(n_languages, n_languages)


class _LoggedSession:
    """The quality session's record: the log only. Its totals go to the store when they are
    revealed; an interrupted session revealed nothing and leaves nothing to clean up."""

    def __init__(self, version: int) -> None:
        self._version = version

    def started(self, session_hex: str, n: int, threshold: int) -> None:
        log.info(
            "quality session %s of version %s: %d Pis, t=%d",
            session_hex[:12],
            self._version,
            n,
            threshold,
        )

    def finished(
        self, session_hex: str, ok: bool, dropped: dict[int, str], reason: str | None
    ) -> None:
        log.info(
            "quality session %s %s; dropped %s%s",
            session_hex[:12],
            "completed" if ok else "aborted",
            dropped or "none",
            f": {reason}" if reason else "",
        )


@dataclass
class _Collector:
    """The per-device metrics replies of the stage, validated and stored as they arrive."""

    store: Store
    round_id: int
    version: int
    waiting: set[int]
    reports: list[dict[str, Any]] = field(default_factory=list)

    def take(self, d: Delivery) -> None:
        """One evaluate reply (or error); anything else is not this stage's."""
        if d.task.kind != EVALUATE or d.device_id not in self.waiting:
            return
        self.waiting.discard(d.device_id)
        if not isinstance(d.reply, EvaluateReply):
            why = d.reply.error if isinstance(d.reply, ErrorReply) else type(d.reply).__name__
            log.warning(
                "device %s could not evaluate version %s: %s", d.device_id, self.version, why
            )
            return
        try:
            aggregate_device_metrics([d.reply.metrics])  # validates this one report
            clean = {k: d.reply.metrics[k] for k in DEVICE_REPORT_FIELDS}
        except (GateError, KeyError) as e:
            log.warning("device %s sent invalid metrics: %s", d.device_id, e)
            return
        self.store.add_device_metrics(self.round_id, d.device_id, self.version, clean)
        self.reports.append(clean)


@dataclass(frozen=True)
class EvaluateContext:
    """What the stage needs of the runner: the fleet's settings, the round's certified
    participants, the pinned authority, and the runner's stop, events and clock."""

    cfg: FleetConfig
    members: tuple[int, ...]
    authority: bytes
    languages: tuple[str, ...]
    stopped: Callable[[], bool]
    emit: EventSink
    clock: Callable[[], float]


def evaluate(
    broker: TaskBroker,
    store: Store,
    ctx: EvaluateContext,
    round_id: int,
    v: ModelVersion,
    files: dict[str, str],
    timings: dict[str, float],
) -> list[dict[str, Any]]:
    """Run the stage; returns the valid per-device reports (the gate's input) and stores the
    fleet quality of ``v`` when its session completes. Raises :class:`RoundFailed` only when no
    device returned valid metrics."""
    cfg = ctx.cfg
    devices = [lk.device_id for lk in broker.live_devices()]
    joining = [d for d in devices if d in ctx.members] if cfg.fleet_quality else []
    sa_cfg = None
    if len(joining) >= 2:
        stage = cfg.stage_timeout
        sa_cfg = quality_config(
            joining,
            len(ctx.languages),
            StageTimeouts(cfg.eval_timeout, stage, stage, stage),
            cfg.threshold,
        )
    elif cfg.fleet_quality:
        log.info("version %s: fewer than 2 certified evaluators, no fleet quality", v.version)
    broker.open(round_id, (EVALUATE, SECAGG))
    for dev in devices:
        quality = sa_cfg if sa_cfg is not None and dev in joining else None
        client_id = dev if quality is not None else None
        task = EvaluateTask(round_id, v.version, files, client_id, quality)
        broker.assign(dev, task)
    deadline = ctx.clock() + cfg.eval_timeout
    collected = _Collector(store, round_id, v.version, set(devices))
    if sa_cfg is not None:
        _quality_session(broker, store, ctx, round_id, v.version, sa_cfg, collected, timings)
    while collected.waiting and ctx.clock() < deadline and not ctx.stopped():
        for gone in broker.unreachable(sorted(collected.waiting), cfg.silence_timeout):
            log.warning("device %s is gone (no contact within the live window)", gone)
            collected.waiting.discard(gone)
            # Not live until it polls again: deploy and the next round do not wait for it.
            broker.mark_dropped([gone])
        if not collected.waiting:
            break
        d = broker.next_reply(round_id, (EVALUATE,), timeout=0.1)
        if d is not None:
            collected.take(d)
    if not collected.reports:
        raise RoundFailed("no device returned valid evaluation metrics")
    return collected.reports


def _quality_session(
    broker: TaskBroker,
    store: Store,
    ctx: EvaluateContext,
    round_id: int,
    version: int,
    sa_cfg: SecAggConfig,
    collected: _Collector,
    timings: dict[str, float],
) -> None:
    """The quality session; its failure is logged, never raised."""
    t = time.perf_counter()
    run = SessionRun(
        round_id,
        EVALUATE,
        sa_cfg,
        _LoggedSession(version),
        ctx.stopped,
        ctx.emit,
        ctx.cfg.silence_timeout,
    )
    try:
        result = drive_session(
            broker, run, _new_server(sa_cfg, ctx.authority), collected.take, timings
        )
        counts = fleet_counts(result, len(ctx.languages))
    except (RoundFailed, SecAggError) as e:  # never the round's failure
        log.warning("version %s has no fleet quality: %s", version, e)
        ctx.emit(
            {"event": "quality_failed", "round": round_id, "version": version, "reason": str(e)}
        )
        return
    finally:
        # A dropped Pi's leftover session request must not sit in front of its deployment.
        broker.cancel(round_id, (SECAGG,))
        timings["quality_session"] = time.perf_counter() - t
    store.add_fleet_quality(
        version, round_id, ctx.languages, counts.tolist(), len(result.survivors)
    )
    ctx.emit(
        {
            "event": "quality",
            "round": round_id,
            "version": version,
            "devices": len(result.survivors),
        }
    )
