"""Configuration of one secure-aggregation deployment (Bonawitz et al., CCS 2017).

A :class:`SecAggConfig` is shared by the coordinator and every client; its digest is bound into
the session id, so a client configured differently (other ids, threshold or quantisation) cannot
join a session by mistake.

Default threshold: ``t = floor(2n/3) + 1``. Bonawitz et al. (Sec. 6) prove privacy against a
server that is *active* (may lie about who dropped) together with ``n_C`` corrupt clients as long
as ``t > (n + n_C) / 2``; with ``t > 2n/3`` that holds for any coalition of fewer than ``n/3``
clients, while still tolerating ``n - t`` (about a third) dropouts, which covers the Pi fleet's
expected churn. Any explicit threshold must be a strict majority (``t > n/2``): otherwise a server
could ask two disjoint halves for the two different shares of the same client.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

from Crypto.Hash import SHA256

from .quantize import QuantisationParams

__all__ = ["SecAggConfig", "StageTimeouts", "default_threshold"]

_MAX_CLIENT_ID = 2**32 - 1


def default_threshold(num_clients: int) -> int:
    """floor(2n/3) + 1, capped at n: secure against an active server plus < n/3 clients."""
    if isinstance(num_clients, bool) or not isinstance(num_clients, int) or num_clients < 2:
        raise ValueError(f"secure aggregation needs at least 2 clients, got {num_clients!r}")
    return min(num_clients, (2 * num_clients) // 3 + 1)


@dataclass(frozen=True)
class StageTimeouts:
    """Seconds each stage may stay open; every one is finite so no stage waits forever."""

    advertise_keys: float = 30.0
    share_keys: float = 60.0
    masked_input_collection: float = 300.0
    unmasking: float = 60.0

    def __post_init__(self) -> None:
        for name in ("advertise_keys", "share_keys", "masked_input_collection", "unmasking"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"timeout {name} must be a number, got {type(value).__name__}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(
                    f"timeout {name} must be finite and > 0 seconds, got {value}; "
                    "a stage without deadline would wait forever for a dropped client"
                )

    def for_stage(self, stage: int) -> float:
        """The timeout of a :class:`~edge.secagg.stages.Stage` (by value)."""
        return (
            self.advertise_keys,
            self.share_keys,
            self.masked_input_collection,
            self.unmasking,
        )[stage]


@dataclass(frozen=True)
class SecAggConfig:
    """Who takes part, how many must survive, and how updates are quantised.

    ``client_ids`` are stored sorted. ``vector_lengths`` lists the lengths of the float vectors a
    client contributes (e.g. one per model layer). ``scale=None`` picks the finest scale for which
    the sum cannot overflow. ``t`` and ``quantisation`` are derived and validated here.
    """

    client_ids: tuple[int, ...]
    vector_lengths: tuple[int, ...]
    threshold: int | None = None
    bit_width: int = 32
    clip_bound: float = 1.0
    max_weight: int = 1000
    scale: float | None = None
    timeouts: StageTimeouts = field(default_factory=StageTimeouts)
    t: int = field(init=False)
    quantisation: QuantisationParams = field(init=False, repr=False)

    def __post_init__(self) -> None:
        ids = self.client_ids
        if not isinstance(ids, tuple | list):
            raise TypeError(f"client_ids must be a tuple of ints, got {type(ids).__name__}")
        for cid in ids:
            if isinstance(cid, bool) or not isinstance(cid, int):
                raise TypeError(f"client id {cid!r} is not an int")
            if not 1 <= cid <= _MAX_CLIENT_ID:
                raise ValueError(f"client id {cid} must be in 1..{_MAX_CLIENT_ID}")
        if len(set(ids)) != len(ids):
            raise ValueError("client_ids contains duplicates; every client needs its own id")
        if len(ids) < 2:
            raise ValueError(
                f"secure aggregation needs at least 2 clients, got {len(ids)}: the sum of one "
                "client is its input"
            )
        object.__setattr__(self, "client_ids", tuple(sorted(ids)))
        lengths = self.vector_lengths
        if not isinstance(lengths, tuple | list) or not lengths:
            raise TypeError("vector_lengths must be a non-empty tuple of positive ints")
        for length in lengths:
            if isinstance(length, bool) or not isinstance(length, int) or length < 1:
                raise ValueError(f"vector length {length!r} must be a positive int")
        object.__setattr__(self, "vector_lengths", tuple(lengths))
        n = len(self.client_ids)
        if self.threshold is None:
            t = default_threshold(n)
        else:
            t = self.threshold
            if isinstance(t, bool) or not isinstance(t, int):
                raise TypeError(f"threshold must be an int or None, got {type(t).__name__}")
            if not max(2, n // 2 + 1) <= t <= n:
                raise ValueError(
                    f"threshold {t} must satisfy max(2, n//2 + 1) <= t <= n = {n}: a strict "
                    "majority, so two disjoint groups can never both reach it"
                )
        object.__setattr__(self, "t", t)
        if isinstance(self.bit_width, bool) or not isinstance(self.bit_width, int):
            raise TypeError(f"bit_width must be an int, got {type(self.bit_width).__name__}")
        if not 8 <= self.bit_width <= 64:
            raise ValueError(f"bit_width must be in 8..64, got {self.bit_width}")
        if not isinstance(self.timeouts, StageTimeouts):
            raise TypeError("timeouts must be a StageTimeouts")
        total = sum(self.vector_lengths)
        if self.scale is None:
            quant = QuantisationParams.with_largest_scale(
                bit_width=self.bit_width,
                clip_bound=self.clip_bound,
                max_weight=self.max_weight,
                num_clients=n,
                num_coordinates=total,
            )
        else:
            quant = QuantisationParams(
                self.bit_width, self.clip_bound, self.max_weight, n, total, self.scale
            )
        object.__setattr__(self, "quantisation", quant)

    @property
    def num_clients(self) -> int:
        """n, the number of configured clients."""
        return len(self.client_ids)

    @property
    def digest(self) -> bytes:
        """SHA-256 over every field that changes the protocol's meaning (not the timeouts)."""
        q = self.quantisation
        h = SHA256.new(b"pifed-secagg/v1 config")
        h.update(struct.pack("<I", self.num_clients))
        h.update(b"".join(struct.pack("<I", cid) for cid in self.client_ids))
        h.update(struct.pack("<I", len(self.vector_lengths)))
        h.update(b"".join(struct.pack("<Q", length) for length in self.vector_lengths))
        h.update(struct.pack("<IIdQd", self.t, q.bit_width, q.clip_bound, q.max_weight, q.scale))
        return h.digest()
