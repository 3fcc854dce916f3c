"""Fair service on the broker: one outstanding long-poll per device, none slows another.

In-process on the broker with threads; no gRPC, no store.
"""

from __future__ import annotations

import threading
import time

from edge.tasks import EVALUATE, EvaluateTask, IdleTask, PollRequest
from federated.broker import TaskBroker

POLL_WAIT = 1.0
FILES = {"manifest.json": "0" * 64, "model_float.tflite": "1" * 64}


def _broker() -> TaskBroker:
    return TaskBroker(POLL_WAIT, 30.0, lambda: None)


def _poll(broker: TaskBroker, device: int) -> tuple[object, str, float]:
    t = time.monotonic()
    task, task_id, _ = broker.poll(device, f"pi-{device}", PollRequest(None).header())
    return task, task_id, time.monotonic() - t


def test_a_new_poll_from_the_same_device_releases_the_old_one_at_once() -> None:
    broker = _broker()
    got: list[tuple[object, str, float]] = []
    old = threading.Thread(target=lambda: got.append(_poll(broker, 1)))
    old.start()
    time.sleep(0.2)  # the old poll is waiting
    new = threading.Thread(target=lambda: got.append(_poll(broker, 1)))
    new.start()
    old.join(timeout=POLL_WAIT)
    assert not old.is_alive()
    task, task_id, took = got[0]
    assert isinstance(task, IdleTask) and task_id == "" and took < 0.2 + 0.3
    # The task goes to the current poll, not the released one.
    broker.assign(1, EvaluateTask(1, 1, FILES))
    new.join(timeout=2)
    assert got[1][0].kind == EVALUATE and got[1][1]  # type: ignore[attr-defined]
    broker.stop()


def test_one_device_opening_many_polls_does_not_delay_another() -> None:
    broker = _broker()
    stop = threading.Event()

    def flood() -> None:  # device 1: polls again and again from 16 threads
        while not stop.is_set():
            broker.poll(1, "pi-1", PollRequest(None).header())

    flooders = [threading.Thread(target=flood, daemon=True) for _ in range(16)]
    for f in flooders:
        f.start()
    try:
        time.sleep(0.3)
        # Device 2's idle poll ends at its own poll_wait, not later.
        _, task_id, took = _poll(broker, 2)
        assert task_id == "" and took < POLL_WAIT + 0.5, took
        # A task for device 2 reaches its waiting poll at once.
        got: list[tuple[object, str, float]] = []
        waiter = threading.Thread(target=lambda: got.append(_poll(broker, 2)))
        waiter.start()
        time.sleep(0.2)
        assigned = time.monotonic()
        broker.assign(2, EvaluateTask(1, 1, FILES))
        waiter.join(timeout=5)
        delivered = time.monotonic() - assigned
        assert got and got[0][1] and delivered < 0.5, delivered
    finally:
        stop.set()
        broker.stop()
        for f in flooders:
            f.join(timeout=5)
    assert not any(f.is_alive() for f in flooders)
