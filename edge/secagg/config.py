"""Configuration of one secure-aggregation deployment (Bonawitz et al., CCS 2017).

A :class:`SecAggConfig` is shared by the coordinator and every client; its digest is bound into
the session id, so a client configured differently (other ids, threshold, variant or
quantisation) cannot join a session by mistake.

Threshold floor. Against an *active* server (it may lie about who dropped) colluding with up to
``c`` clients, the threshold must satisfy ``t > (n + c) / 2``: to learn an honest client's input
the server needs ``t`` shares of its self-mask seed from clients told it survived and ``t``
shares of its masking key from clients told it dropped. The ``c`` colluders give both; each
honest client answers for one story only (it signs one survivor set, and reveals one share per
peer, once), so the two stories need ``2(t - c)`` distinct honest clients out of ``n - c``: the
attack is possible exactly when ``2(t - c) <= n - c``, i.e. ``2t <= n + c``. The config refuses
every ``t <= (n + c) / 2`` (floor ``(n + c) // 2 + 1``). ``colluders=None`` means
``c = (n - 1) // 3`` (fewer than a third of the fleet). Default threshold:
``max(floor(2n/3) + 1, (n + c) // 2 + 1)``, which tolerates ``n - t`` (about a third) dropouts.

Variants. ``active=True`` (the default, what the fleet runs) is the actively secure protocol:
signed AdvertiseKeys against device certificates and the ConsistencyCheck round. ``active=False``
is the semi-honest variant of protocol version 1 (no signatures, no consistency round), kept so a
benchmark can measure the active protocol's cost side by side; it is private only against an
honest-but-curious coordinator (docs/secure-aggregation.md).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from Crypto.Hash import SHA256

from .errors import ConfigError
from .quantize import QuantisationParams

__all__ = [
    "SecAggConfig",
    "StageTimeouts",
    "default_colluders",
    "default_threshold",
    "threshold_floor",
]

_MAX_CLIENT_ID = 2**32 - 1
#: The stage timeouts in StageTimeouts (and Stage) order; ``to_dict`` lists them in this order.
_TIMEOUT_FIELDS = ("advertise_keys", "share_keys", "masked_input_collection", "unmasking")
#: The keys ``SecAggConfig.to_dict`` always writes; ``"scale"`` is written only when set.
_DICT_KEYS = (
    "client_ids",
    "vector_lengths",
    "threshold",
    "bit_width",
    "clip_bound",
    "max_weight",
    "timeouts",
)
#: Written only when not the default, so a default config's dict is unchanged from version 1.
_OPTIONAL_DICT_KEYS = ("scale", "active", "colluders")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _dict_int(data: Mapping[str, Any], key: str) -> int:
    value = data[key]
    if not _is_int(value):
        raise ConfigError(f"SecAggConfig field {key!r} must be an int, got {value!r}")
    return int(value)


def _dict_number(data: Mapping[str, Any], key: str) -> float:
    value = data[key]
    if not _is_number(value):
        raise ConfigError(f"SecAggConfig field {key!r} must be a number, got {value!r}")
    return float(value)


def _dict_list(data: Mapping[str, Any], key: str, *, numbers: bool = False) -> list[Any]:
    value = data[key]
    if not isinstance(value, list | tuple):
        raise ConfigError(f"SecAggConfig field {key!r} must be a list, got {type(value).__name__}")
    check, kind = (_is_number, "a number") if numbers else (_is_int, "an int")
    for i, item in enumerate(value):
        if not check(item):
            raise ConfigError(f"SecAggConfig field {key!r}[{i}] must be {kind}, got {item!r}")
    return [float(item) for item in value] if numbers else [int(item) for item in value]


def _check_n(num_clients: object) -> int:
    if isinstance(num_clients, bool) or not isinstance(num_clients, int) or num_clients < 2:
        raise ValueError(f"secure aggregation needs at least 2 clients, got {num_clients!r}")
    return num_clients


def default_colluders(num_clients: int) -> int:
    """(n - 1) // 3: the colluding clients assumed when none are stated (fewer than n/3)."""
    return (_check_n(num_clients) - 1) // 3


def threshold_floor(num_clients: int, colluders: int) -> int:
    """(n + c) // 2 + 1, the least t with t > (n + c)/2: safe against an active server + c."""
    return (_check_n(num_clients) + colluders) // 2 + 1


def default_threshold(num_clients: int, colluders: int | None = None) -> int:
    """max(floor(2n/3) + 1, floor((n + c)/2) + 1), capped at n: tolerates ~n/3 dropouts and
    is safe against an active server plus ``c`` colluders (default ``(n - 1) // 3``)."""
    n = _check_n(num_clients)
    c = default_colluders(n) if colluders is None else colluders
    return min(n, max((2 * n) // 3 + 1, threshold_floor(n, c)))


@dataclass(frozen=True)
class StageTimeouts:
    """Seconds each stage may stay open; every one is finite so no stage waits forever."""

    advertise_keys: float = 30.0
    share_keys: float = 60.0
    masked_input_collection: float = 300.0
    unmasking: float = 60.0
    #: ConsistencyCheck has no timeout of its own (the wire format of the config lists four):
    #: it is a signature over a short list, answered as fast as Unmasking, so it uses that one.

    def __post_init__(self) -> None:
        for name in _TIMEOUT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"timeout {name} must be a number, got {type(value).__name__}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(
                    f"timeout {name} must be finite and > 0 seconds, got {value}; "
                    "a stage without deadline would wait forever for a dropped client"
                )

    def for_stage(self, stage: int) -> float:
        """The timeout of a :class:`~edge.secagg.stages.Stage` (by value; ConsistencyCheck
        uses the unmasking timeout)."""
        return (
            self.advertise_keys,
            self.share_keys,
            self.masked_input_collection,
            self.unmasking,
            self.unmasking,
        )[stage]


@dataclass(frozen=True)
class SecAggConfig:
    """Who takes part, how many must survive, and how updates are quantised.

    ``client_ids`` are stored sorted. ``vector_lengths`` lists the lengths of the float vectors a
    client contributes (e.g. one per model layer). ``scale=None`` picks the finest scale for which
    the sum cannot overflow. ``active`` selects the actively secure protocol (default) or the
    semi-honest variant; ``colluders`` is the ``c`` of the threshold floor (None: ``(n-1)//3``).
    ``t``, ``c`` and ``quantisation`` are derived and validated here.
    """

    client_ids: tuple[int, ...]
    vector_lengths: tuple[int, ...]
    threshold: int | None = None
    bit_width: int = 32
    clip_bound: float = 1.0
    max_weight: int = 1000
    scale: float | None = None
    timeouts: StageTimeouts = field(default_factory=StageTimeouts)
    active: bool = True
    colluders: int | None = None
    t: int = field(init=False)
    c: int = field(init=False)
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
        if not isinstance(self.active, bool):
            raise TypeError(f"active must be a bool, got {type(self.active).__name__}")
        c = default_colluders(n) if self.colluders is None else self.colluders
        if isinstance(c, bool) or not isinstance(c, int):
            raise TypeError(f"colluders must be an int or None, got {type(c).__name__}")
        if not 0 <= c <= n - 2:
            raise ValueError(
                f"colluders must be in 0..n-2 = {n - 2}, got {c}: with more colluding clients "
                "no threshold <= n is safe"
            )
        floor = max(2, threshold_floor(n, c))
        if self.threshold is None:
            t = default_threshold(n, c)
        else:
            t = self.threshold
            if isinstance(t, bool) or not isinstance(t, int):
                raise TypeError(f"threshold must be an int or None, got {type(t).__name__}")
        if not floor <= t <= n:
            raise ValueError(
                f"threshold {t} must satisfy (n + c)//2 + 1 = {floor} <= t <= n = {n} (n = {n} "
                f"clients, c = {c} colluders): with t <= (n + c)/2 an active coordinator and {c} "
                "colluding clients can tell two groups different stories about who dropped and "
                "rebuild both secrets of an honest client; raise the threshold or lower "
                "colluders"
            )
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "c", c)
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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of the constructor arguments; :meth:`from_dict` inverts it.

        Keys: ``client_ids`` and ``vector_lengths`` (lists of ints, ids sorted), ``threshold``
        (int, or None for the default), ``bit_width``, ``clip_bound`` (float), ``max_weight``,
        ``timeouts`` (the four stage timeouts in :class:`StageTimeouts` order, floats), and
        ``scale`` (float) only when an explicit scale was set, ``active`` (bool) only when False
        and ``colluders`` (int) only when set, so a default config's dict is that of protocol
        version 1 (the digest tells the versions apart). Encode it with
        ``json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"))`` for a stable text.
        """
        out: dict[str, Any] = {
            "client_ids": [int(cid) for cid in self.client_ids],
            "vector_lengths": [int(length) for length in self.vector_lengths],
            "threshold": None if self.threshold is None else int(self.threshold),
            "bit_width": int(self.bit_width),
            "clip_bound": float(self.clip_bound),
            "max_weight": int(self.max_weight),
            "timeouts": [float(getattr(self.timeouts, name)) for name in _TIMEOUT_FIELDS],
        }
        if self.scale is not None:
            out["scale"] = float(self.scale)
        if not self.active:
            out["active"] = False
        if self.colluders is not None:
            out["colluders"] = int(self.colluders)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SecAggConfig:
        """Rebuild a config from :meth:`to_dict`'s output (e.g. after ``json.loads``).

        Strict: a missing or unknown key, a value of the wrong JSON type (a bool or float where
        an int is expected, a string where a number is), or a value the constructor rejects
        raises :class:`~edge.secagg.errors.ConfigError` naming the field.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"SecAggConfig.from_dict needs a dict (e.g. from json.loads), got "
                f"{type(data).__name__}"
            )
        missing = [key for key in _DICT_KEYS if key not in data]
        if missing:
            raise ConfigError(f"SecAggConfig dict is missing field(s) {', '.join(missing)}")
        unknown = sorted(repr(key) for key in data if key not in _DICT_KEYS + _OPTIONAL_DICT_KEYS)
        if unknown:
            raise ConfigError(
                f"SecAggConfig dict has unknown field(s) {', '.join(unknown)}; the coordinator "
                "and the client may run different pifed versions"
            )
        client_ids = _dict_list(data, "client_ids")
        vector_lengths = _dict_list(data, "vector_lengths")
        threshold = None if data["threshold"] is None else _dict_int(data, "threshold")
        bit_width = _dict_int(data, "bit_width")
        clip_bound = _dict_number(data, "clip_bound")
        max_weight = _dict_int(data, "max_weight")
        timeouts = _dict_list(data, "timeouts", numbers=True)
        if len(timeouts) != len(_TIMEOUT_FIELDS):
            raise ConfigError(
                f"SecAggConfig field 'timeouts' must list {len(_TIMEOUT_FIELDS)} stage timeouts "
                f"({', '.join(_TIMEOUT_FIELDS)}), got {len(timeouts)}"
            )
        scale = None
        if data.get("scale") is not None:
            scale = _dict_number(data, "scale")
        active = data.get("active", True)
        if not isinstance(active, bool):
            raise ConfigError(f"SecAggConfig field 'active' must be a bool, got {active!r}")
        colluders = None if data.get("colluders") is None else _dict_int(data, "colluders")
        try:
            return cls(
                client_ids=tuple(client_ids),
                vector_lengths=tuple(vector_lengths),
                threshold=threshold,
                bit_width=bit_width,
                clip_bound=clip_bound,
                max_weight=max_weight,
                scale=scale,
                timeouts=StageTimeouts(*timeouts),
                active=active,
                colluders=colluders,
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"SecAggConfig dict is invalid: {exc}") from exc

    @property
    def num_clients(self) -> int:
        """n, the number of configured clients."""
        return len(self.client_ids)

    @property
    def digest(self) -> bytes:
        """SHA-256 over every field that changes the protocol's meaning (not the timeouts)."""
        q = self.quantisation
        h = SHA256.new(b"pifed-secagg/v2 config")
        h.update(struct.pack("<BI", int(self.active), self.c))
        h.update(struct.pack("<I", self.num_clients))
        h.update(b"".join(struct.pack("<I", cid) for cid in self.client_ids))
        h.update(struct.pack("<I", len(self.vector_lengths)))
        h.update(b"".join(struct.pack("<Q", length) for length in self.vector_lengths))
        h.update(struct.pack("<IIdQd", self.t, q.bit_width, q.clip_bound, q.max_weight, q.scale))
        return h.digest()
