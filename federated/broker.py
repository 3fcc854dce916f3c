"""The task broker: device links, long-polls, submissions, and one reply queue per stage.

Devices pull. Each long-polls for its next task and submits the answer with the task's id; a
task id is single-use, so a replayed or stale submission is rejected (``StaleTask``). The round
runner assigns tasks and reads the replies of *its* stage only: replies are sorted into one
queue per (round, task kind), opened by the stage that waits for them. A reply whose queue is not
open (a late answer to a stage that has ended, an answer to a cancelled task) is logged and
dropped here, never swallowed by a stage waiting for something else.

Thread-safe: gRPC handler threads call :meth:`poll` and :meth:`submit`, the round thread the
rest. No I/O, no store: what the broker needs to know of the fleet's deployed version comes
from a callable, so a unit test drives it with plain objects.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from edge.tasks import (
    DEPLOY,
    DeployReply,
    DeployTask,
    ErrorReply,
    IdleTask,
    PollRequest,
    Reply,
    Task,
    decode_reply,
)
from edge.wire import Frame, WireError

log = logging.getLogger("pifed.broker")


class StaleTask(ValueError):
    """A submission names a task that is not the device's open task (replay or stale)."""


@dataclass(frozen=True)
class Delivery:
    """A device's reply to one of its tasks."""

    device_id: int
    task: Task
    reply: Reply


@dataclass
class DeviceLink:
    """What the broker knows of one device since this coordinator started."""

    device_id: int
    name: str
    # The device's long-poll waits here (sharing the broker's lock): waking one device's poll
    # wakes no other device's.
    wake: threading.Condition
    last_poll: float = 0.0
    deployed: int | None = None
    # It has heartbeated: it says so while busy, so a long silence means it is gone.
    heartbeats: bool = False
    tasks: deque[tuple[str, Task, bytes]] = field(default_factory=deque)
    # Which of the device's polls is the current one: a newer poll releases the older at once.
    poll_seq: int = 0
    # Last poll or submission: a device not working on a task that has been silent for longer
    # than the live window is gone from the stage it is in.
    last_contact: float = 0.0
    # The id of the task a poll handed over and no submission has answered yet: the device is
    # working on it (training, evaluating) and does not poll meanwhile.
    delivered: str | None = None
    # What its last poll said of its platform (``PollRequest.platform``), for the fleet view.
    platform: dict[str, str] | None = None

    def has(self, kind: str) -> bool:
        """An open task of this kind is waiting for the device."""
        return any(t.kind == kind for _, t, _ in self.tasks)


QueueKey = tuple[int | None, str]


class TaskBroker:
    """Owns device links and reply queues; the round runner and the gRPC service share it."""

    def __init__(
        self,
        poll_wait: float,
        live_window: float,
        deployment: Callable[[], DeployTask | None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._poll_wait = poll_wait
        self._live_window = live_window
        self._deployment = deployment
        self._clock = clock
        self._lock = threading.Lock()
        # Round-facing waits (replies); each device's long-poll waits on its link's condition.
        self._cv = threading.Condition(self._lock)
        self._links: dict[int, DeviceLink] = {}
        self._queues: dict[QueueKey, deque[Delivery]] = {}
        # Devices that dropped out of a session, with when: they count as live again only after
        # they poll anew (a dead Pi's last poll may still be inside the live window).
        self._suspect: dict[int, float] = {}
        self._stopped = threading.Event()

    # -- device-facing (gRPC threads) ----------------------------------------------------------
    def poll(self, device_id: int, name: str, header: dict[str, Any]) -> tuple[Task, str, bytes]:
        """Long-poll: the device's open task with its id and payload, or an idle task after
        ``poll_wait`` seconds (id "").

        One outstanding poll per device: a new poll from the same device releases the one it
        had waiting, which answers idle at once. A device opening many polls thus holds one
        server thread, not many, and its polls wake no other device's.
        """
        request = PollRequest.from_header(header)
        with self._lock:
            link = self._links.get(device_id)
            if link is None:
                link = self._links[device_id] = DeviceLink(
                    device_id, name, threading.Condition(self._lock)
                )
            link.poll_seq += 1
            mine = link.poll_seq
            link.wake.notify_all()  # the device's older poll, if any, answers idle now
            link.last_poll = link.last_contact = self._clock()
            link.deployed = request.deployed
            if request.platform is not None:
                link.platform = dict(request.platform)
            self._queue_deploy(link)
            deadline = self._clock() + self._poll_wait
            while not link.tasks and not self._stopped.is_set() and link.poll_seq == mine:
                left = deadline - self._clock()
                if left <= 0:
                    break
                link.wake.wait(left)
            if link.poll_seq != mine:
                return IdleTask(), "", b""
            link.last_poll = link.last_contact = self._clock()
            if link.tasks:
                task_id, task, payload = link.tasks[0]
                link.delivered = task_id
                return task, task_id, payload
        return IdleTask(), "", b""

    def heartbeat(self, device_id: int, name: str) -> None:
        """A device working on a task is alive; it also counts as heartbeating from now on, so
        its silence means it is gone (a device that never heartbeats is judged by its polls and
        the stage deadlines only, as Pis before heartbeats were)."""
        with self._lock:
            link = self._links.get(device_id)
            if link is None:
                link = self._links[device_id] = DeviceLink(
                    device_id, name, threading.Condition(self._lock)
                )
            link.last_poll = link.last_contact = self._clock()
            link.heartbeats = True

    def submit(self, device_id: int, name: str, frame: Frame) -> None:
        """Accept the answer to the device's open task; anything else is ``StaleTask``.

        A malformed answer still closes the task (the stage hears of it as an error at once)
        and raises ``WireError`` so the device is told.
        """
        task_id = frame.get("task", str)
        with self._cv:
            link = self._links.get(device_id)
            if link is None or not link.tasks or link.tasks[0][0] != task_id:
                raise StaleTask(
                    f"device {name}: task {task_id[:8]}… is not open (replayed or stale)"
                )
            _, task, _ = link.tasks.popleft()
            link.delivered = None
            link.last_contact = self._clock()
            malformed: WireError | None = None
            try:
                reply = decode_reply(task.kind, frame)
            except WireError as e:
                malformed = e
                reply = ErrorReply(f"malformed {task.kind} reply: {e}")
            if isinstance(reply, DeployReply):
                link.deployed = reply.deployed
            key = (task.round, task.kind)
            if key in self._queues:
                self._queues[key].append(Delivery(device_id, task, reply))
            elif task.kind != DEPLOY:
                log.info(
                    "device %s: late %s reply for round %s dropped (that stage has ended)",
                    name,
                    task.kind,
                    task.round,
                )
            self._cv.notify_all()
        if malformed is not None:
            raise malformed

    # -- round-facing (the round thread) -------------------------------------------------------
    def assign(self, device_id: int, task: Task, payload: bytes = b"") -> str:
        """Queue a task for a device that has polled; returns its single-use id."""
        task_id = secrets.token_hex(16)
        with self._lock:
            link = self._links[device_id]
            link.tasks.append((task_id, task, payload))
            link.wake.notify_all()
        return task_id

    def open(self, round_id: int, kinds: Iterable[str]) -> None:
        """Start collecting replies of these kinds for this round."""
        with self._cv:
            for kind in kinds:
                self._queues.setdefault((round_id, kind), deque())

    def next_reply(self, round_id: int, kinds: Iterable[str], timeout: float) -> Delivery | None:
        """The oldest reply of one of these kinds for this round, waiting up to ``timeout``."""
        keys = [(round_id, k) for k in kinds]
        deadline = self._clock() + timeout
        with self._cv:
            while True:
                for key in keys:
                    q = self._queues.get(key)
                    if q:
                        return q.popleft()
                left = deadline - self._clock()
                if left <= 0 or self._stopped.is_set():
                    return None
                self._cv.wait(left)

    def cancel(self, round_id: int, kinds: Iterable[str]) -> None:
        """Forget this round's open tasks and queued replies of these kinds: a late answer is
        then stale for the device and logged here."""
        kinds = set(kinds)
        with self._cv:
            for link in self._links.values():
                link.tasks = deque(
                    t for t in link.tasks if t[1].round != round_id or t[1].kind not in kinds
                )
            for kind in kinds:
                left = self._queues.pop((round_id, kind), None)
                if left:
                    log.info("round %s: %d unread %s replies discarded", round_id, len(left), kind)

    def push_deployment(self) -> None:
        """Give every known device that runs another version the deployed one."""
        with self._lock:
            for link in self._links.values():
                self._queue_deploy(link)

    def deploys_pending(self, device_ids: Iterable[int]) -> list[int]:
        """Those of these devices that still have a deployment to install."""
        with self._cv:
            return [d for d in device_ids if d in self._links and self._links[d].has(DEPLOY)]

    def links(self) -> list[DeviceLink]:
        """Every device that contacted this coordinator, live or not, by device id (read by
        the dashboard: its deployed version and platform)."""
        with self._lock:
            return sorted(self._links.values(), key=lambda lk: lk.device_id)

    def live_devices(self) -> list[DeviceLink]:
        """Devices that polled within the live window (and since they last dropped out),
        by device id."""
        now = self._clock()
        with self._cv:
            live = [
                lk
                for lk in self._links.values()
                if now - lk.last_poll <= self._live_window
                and lk.last_poll > self._suspect.get(lk.device_id, float("-inf"))
            ]
        return sorted(live, key=lambda lk: lk.device_id)

    def unreachable(self, device_ids: Iterable[int], silence_timeout: float) -> list[int]:
        """Those of these devices that are gone, so a stage stops waiting for them at once
        instead of at its deadline:

        - not working on a task handed to them, and silent (no poll, no submission) for longer
          than the live window;
        - working on one and heartbeating (a busy Pi says so every few seconds), but silent
          for longer than ``silence_timeout``.

        A busy device that never heartbeated (a Pi from before heartbeats) is not judged by
        silence: its stage's deadline covers it.
        """
        now = self._clock()
        with self._lock:
            out = []
            for d in device_ids:
                link = self._links.get(d)
                if link is None:
                    out.append(d)
                    continue
                busy = link.delivered is not None and any(
                    t[0] == link.delivered for t in link.tasks
                )
                silence = now - link.last_contact
                if (not busy and silence > self._live_window) or (
                    busy and link.heartbeats and silence > silence_timeout
                ):
                    out.append(d)
            return out

    def mark_dropped(self, device_ids: Iterable[int]) -> None:
        """These devices dropped out of a session: not live until they poll again."""
        now = self._clock()
        with self._cv:
            for d in device_ids:
                self._suspect[int(d)] = now

    def stop(self) -> None:
        """Release every long-poll and wait: the coordinator is stopping."""
        self._stopped.set()
        with self._lock:
            self._cv.notify_all()
            for link in self._links.values():
                link.wake.notify_all()

    # -- internals -----------------------------------------------------------------------------
    def _queue_deploy(self, link: DeviceLink) -> None:
        """Under the lock: a device not running the deployed version gets it pushed (once)."""
        task = self._deployment()
        if task is None or link.deployed == task.version or link.has(DEPLOY):
            return
        link.tasks.append((secrets.token_hex(16), task, b""))
        link.wake.notify_all()
