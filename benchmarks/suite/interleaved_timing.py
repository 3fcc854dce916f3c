"""Side-by-side timing: contestants take turns in short blocks, so noise hits them all alike.

This machine is shared (a TFF simulation or a crypto benchmark may run beside us). Timing A
for ten seconds and then B for ten seconds lets a burst of load land on one of them only.
Here every round runs a short block of each contestant, in a seeded random order, and the
per-call times of all rounds are pooled; a burst then lands on every contestant alike and the
ratio of their medians holds even when the absolute times move.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Contestant:
    """One thing to time: a zero-argument call and how many calls make one block."""

    name: str
    call: Callable[[], object]
    block: int
    warmup: int = 3


def time_interleaved(
    contestants: list[Contestant],
    rounds: int,
    seed: int = 0,
    cpu: dict[str, list[float]] | None = None,
) -> dict[str, np.ndarray]:
    """Per-call wall times (seconds) for each contestant, pooled over ``rounds`` turns.

    Every contestant is warmed up first (tracing, allocation, caches), then each round visits
    all contestants in a fresh random order and times ``block`` consecutive calls of each.
    If ``cpu`` is given it receives, per contestant, the process CPU seconds per call of each
    block: the work done, all threads included, which waiting for a busy core does not inflate.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    names = [c.name for c in contestants]
    if len(set(names)) != len(names):
        raise ValueError(f"contestant names must be distinct, got {names}")
    for c in contestants:
        if c.block < 1:
            raise ValueError(f"{c.name}: block must be >= 1, got {c.block}")
        for _ in range(c.warmup):
            c.call()
    rng = np.random.default_rng(seed)
    times: dict[str, list[float]] = {c.name: [] for c in contestants}
    for _ in range(rounds):
        for i in rng.permutation(len(contestants)):
            c = contestants[int(i)]
            out = times[c.name]
            c0 = time.process_time()
            for _ in range(c.block):
                t0 = time.perf_counter()
                c.call()
                out.append(time.perf_counter() - t0)
            if cpu is not None:
                cpu.setdefault(c.name, []).append((time.process_time() - c0) / c.block)
    return {name: np.asarray(t) for name, t in times.items()}


def summary(seconds: np.ndarray) -> dict[str, float]:
    """p50, p99 and mean in microseconds, plus the number of calls they come from."""
    us = np.asarray(seconds) * 1e6
    return {
        "p50_us": float(np.median(us)),
        "p99_us": float(np.percentile(us, 99)),
        "mean_us": float(np.mean(us)),
        "calls": len(us),
    }
