"""``pifed edge`` as a supervisor and a worker, so a native crash never silences a Pi.

A TFLite runtime is native code: a segfault inside ``train`` or ``infer`` (seen with
ai-edge-litert on aarch64, tools/arm64/README.md) kills the Python process with no exception to
catch, and the coordinator would wait out the stage's timeout for an answer that never comes.
So ``pifed edge`` runs the fleet client in a child process (the worker) and stays small itself:

- the worker notes the task it works on in the state folder (``DeviceState.mark_inflight``);
- when the worker dies of a signal, the supervisor reads that note, answers the task as failed
  (an error reply naming the signal), so the coordinator drops this Pi from the stage at once,
  logs the crash once, and starts a new worker after a short back-off;
- any other exit of the worker is the Pi's exit: 0 when asked to stop, 2 for a usage error, 3
  when the coordinator refuses the device, 137 for the power-loss drill (``--fault-exit-after``).

The worker dies with its supervisor (a watcher thread sees the parent go), so ``kill -9`` of
``pifed edge`` leaves no orphan training on. No TensorFlow here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from edge.state import DeviceState
from edge.tasks import ErrorReply, reply_frame
from edge.transport import ChannelConfig, FleetChannel, TransportError

WORKER_ENV = "PIFED_EDGE_WORKER"
EventSink = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class RestartPolicy:
    """How soon a crashed worker is started again (doubling, capped)."""

    first: float = 1.0
    cap: float = 60.0
    # A worker that lived this long resets the back-off: the crash was not a crash loop.
    healthy_after: float = 300.0


def is_worker() -> bool:
    """This process is the supervised worker (it runs the fleet client itself)."""
    return os.environ.get(WORKER_ENV) == "1"


def watch_parent(poll: float = 1.0) -> threading.Thread:
    """In the worker: exit at once when the supervisor is gone (no orphan keeps training)."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(poll)
            if os.getppid() != parent:
                os._exit(1)

    t = threading.Thread(target=watch, name="watch-supervisor", daemon=True)
    t.start()
    return t


def report_crash(channel: ChannelConfig, state: DeviceState, sig: str, emit: EventSink) -> None:
    """Answer the task the dead worker was in as failed, so its stage goes on without us."""
    inflight = state.take_inflight()
    emit({"event": "crash", "signal": sig, "task": inflight[1] if inflight else None})
    if inflight is None:
        return
    task_id, kind = inflight
    reply = ErrorReply(f"the Pi's {kind} task crashed natively ({sig}); pifed edge restarted it")
    head, payload = reply_frame(task_id, reply)
    ch = FleetChannel(channel)
    try:
        ch.submit(head, payload, timeout=10)
    except TransportError as e:  # a stale task (the stage ended) or the coordinator is away
        emit({"event": "crash_report_failed", "code": e.code})
    finally:
        ch.close()


def supervise(
    argv: Sequence[str],
    channel: ChannelConfig,
    state: DeviceState,
    emit: EventSink,
    policy: RestartPolicy = RestartPolicy(),
    drop_after_first: Sequence[str] = ("--fault-crash-in",),
) -> int:
    """Run ``pifed edge ARGV`` as a worker until it exits for a reason other than a crash.

    ``drop_after_first``: fault-injection flags (with their value) passed to the first worker
    only, so a drill crashes once and the restarted worker carries on.
    """
    stop = threading.Event()
    child: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, frame: object) -> None:
        stop.set()
        if child:
            child[0].send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    args = list(argv)
    backoff = policy.first
    while True:
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "pifed", "edge", *args], env={**os.environ, WORKER_ENV: "1"}
        )
        child[:] = [proc]
        rc = proc.wait()
        if rc >= 0 or stop.is_set():
            return rc if rc >= 0 else 0
        name = signal.Signals(-rc).name
        report_crash(channel, state, name, emit)
        args = _without(args, drop_after_first)
        if time.monotonic() - started > policy.healthy_after:
            backoff = policy.first
        emit({"event": "restart", "after": backoff})
        if stop.wait(backoff):
            return 0
        backoff = min(backoff * 2, policy.cap)


def _without(args: list[str], flags: Sequence[str]) -> list[str]:
    """``args`` less each flag of ``flags`` and the value after it."""
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a in flags:
            skip = True
            continue
        if any(a.startswith(f + "=") for f in flags):
            continue
        out.append(a)
    return out
