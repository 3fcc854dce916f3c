"""While a Pi works on a task it says so every few seconds (``Heartbeat`` calls).

Training a round on a Pi takes minutes, during which it does not poll. Without a word from it,
the coordinator cannot tell a slow Pi from a dead one until the stage's deadline. With
heartbeats it can: a Pi that stops sending them is gone, and its round goes on without it at
once. A coordinator from before heartbeats answers UNIMPLEMENTED; the Pi then stops sending
them for the rest of its life (it learns this once).
"""

from __future__ import annotations

import threading
from types import TracebackType

from edge.tasks import Heartbeat
from edge.transport import FleetChannel, TransportError


class HeartbeatSupport:
    """Whether this Pi's coordinator takes heartbeats (learnt from the first answer)."""

    def __init__(self) -> None:
        self.supported = True


class Beating:
    """Context manager: a thread heartbeating ``task_id`` every ``every`` seconds until exit."""

    def __init__(
        self, channel: FleetChannel, task_id: str, every: float, support: HeartbeatSupport
    ) -> None:
        self._channel, self._task, self._every, self._support = channel, task_id, every, support
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self.sent = 0

    def __enter__(self) -> Beating:
        if self._support.supported and self._every > 0:
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._every + 11)

    def _run(self) -> None:
        # The first beat goes at once: until a Pi has heartbeated, the coordinator cannot tell
        # it from a Pi without heartbeats and waits for it until the stage's deadline, so a Pi
        # dying in the first seconds of its first task would hold its round that long.
        while True:
            try:
                self._channel.heartbeat(Heartbeat(self._task).header(), timeout=10)
                self.sent += 1
            except TransportError as e:
                if e.code == "UNIMPLEMENTED":
                    self._support.supported = False
                    return
                # Unreachable for now: the task's own answer will find out; keep beating.
            if self._stop.wait(self._every):
                return
