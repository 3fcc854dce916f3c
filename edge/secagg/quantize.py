"""Fixed-point quantisation of weighted model updates for secure summation mod 2^k.

Secure aggregation (Bonawitz et al., CCS 2017) sums vectors in the ring Z_{2^k}, so float updates
are mapped to integers first:

1. clip every coordinate to ``[-clip_bound, clip_bound]`` and count the clipped ones;
2. weight by the example count capped at ``max_weight`` (weighted FedAvg, McMahan et al. 2017);
3. scale and round *stochastically*, which is unbiased (E[q] = scale * w * x);
4. store as two's complement mod ``2^k``.

Two extra coordinates carry the weight and the clip count, so the server learns only their sums.
With ``L = ceil(max_weight * clip_bound * scale)`` each client's level lies in ``[-L, L]``; the
constructor checks ``n * L < 2^(k-1)`` (and the same for the weight and clip-count sums), so the
sum of any ``n`` clients can never wrap: overflow is impossible by construction. The rounding
error of one client is below one level, ``1 / scale``, per coordinate (plus float64 rounding,
kept below 2^-10 of a level by capping levels at 2^42).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import DTypeError, QuantisationOverflow, ShapeError, ValueOutOfRange
from .prg import storage_dtype
from .randomness import RandomSource

__all__ = ["DequantisedSum", "QuantisationParams", "QuantisedUpdate", "dequantise", "quantise"]

#: Extra coordinates appended to every quantised update: the weight, then the clip count.
EXTRA_COORDINATES = 2
#: Largest level magnitude: levels are computed in float64, whose relative rounding error
#: (2^-53 per operation) must stay far below one level, so |level| <= 2^42 keeps it under 2^-10.
MAX_LEVEL = 2**42


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


@dataclass(frozen=True)
class QuantisationParams:
    """Clip bound, weight cap and scale for summing ``num_clients`` updates mod ``2^bit_width``.

    Build it with :meth:`with_largest_scale` unless a fixed scale is wanted; the constructor
    raises :class:`QuantisationOverflow` whenever the sum of ``num_clients`` maximal updates could
    reach ``2^(bit_width - 1)``.
    """

    bit_width: int
    clip_bound: float
    max_weight: int
    num_clients: int
    num_coordinates: int
    scale: float

    def __post_init__(self) -> None:
        _check_int("bit_width", self.bit_width, 2)
        if self.bit_width > 64:
            raise ValueError(f"bit_width must be <= 64, got {self.bit_width}")
        _check_int("max_weight", self.max_weight, 1)
        _check_int("num_clients", self.num_clients, 1)
        _check_int("num_coordinates", self.num_coordinates, 1)
        for name in ("clip_bound", "scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a float, got {type(value).__name__}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be finite and > 0, got {value}")
        if self.level_bound > MAX_LEVEL:
            raise QuantisationOverflow(
                f"max level {self.level_bound} exceeds 2^42, beyond which float64 rounding "
                "is no longer negligible; lower the scale"
            )
        half = (1 << (self.bit_width - 1)) - 1
        n = self.num_clients
        for what, per_client in (
            ("update level", self.level_bound),
            ("weight", self.max_weight),
            ("clip count", self.num_coordinates),
        ):
            if n * per_client > half:
                raise QuantisationOverflow(
                    f"{n} clients x max {what} {per_client} = {n * per_client} does not fit in "
                    f"signed {self.bit_width}-bit words (max {half}); raise bit_width, or lower "
                    "the scale, clip_bound, max_weight or vector length"
                )

    @classmethod
    def with_largest_scale(
        cls,
        *,
        bit_width: int,
        clip_bound: float,
        max_weight: int,
        num_clients: int,
        num_coordinates: int,
    ) -> QuantisationParams:
        """The finest scale for which ``num_clients`` maximal updates still cannot wrap."""
        _check_int("bit_width", bit_width, 2)
        _check_int("num_clients", num_clients, 1)
        _check_int("max_weight", max_weight, 1)
        if isinstance(clip_bound, bool) or not isinstance(clip_bound, int | float):
            raise TypeError(f"clip_bound must be a float, got {type(clip_bound).__name__}")
        if not math.isfinite(clip_bound) or clip_bound <= 0:
            raise ValueError(f"clip_bound must be finite and > 0, got {clip_bound}")
        levels = min(((1 << (min(bit_width, 64) - 1)) - 1) // num_clients, MAX_LEVEL)
        if levels < 1:
            raise QuantisationOverflow(
                f"{bit_width}-bit words cannot hold the sum of {num_clients} clients; "
                "raise bit_width"
            )
        scale = levels / (max_weight * clip_bound)
        while math.ceil(max_weight * clip_bound * scale) > levels:
            scale = math.nextafter(scale, 0.0)
        return cls(bit_width, float(clip_bound), max_weight, num_clients, num_coordinates, scale)

    @property
    def level_bound(self) -> int:
        """Largest |level| one client can produce: ceil(max_weight * clip_bound * scale)."""
        return math.ceil(self.max_weight * self.clip_bound * self.scale)

    @property
    def word_count(self) -> int:
        """Words per quantised update: the coordinates plus weight and clip count."""
        return self.num_coordinates + EXTRA_COORDINATES

    @property
    def dtype(self) -> np.dtype:
        """Native unsigned storage dtype of the words."""
        return storage_dtype(self.bit_width).newbyteorder("=")

    @property
    def error_bound(self) -> float:
        """Per coordinate and client, |dequantised - weight * clipped| < error_bound.

        Stochastic rounding moves a value by less than one level (1 / scale); float64 rounding
        adds at most 2^-10 of a level because levels never exceed 2^42.
        """
        return (1.0 + 2.0**-10) / self.scale


@dataclass(frozen=True, eq=False)
class QuantisedUpdate:
    """One client's words mod ``2^bit_width`` plus what it reports locally."""

    words: np.ndarray
    weight: int
    clip_count: int


@dataclass(frozen=True, eq=False)
class DequantisedSum:
    """The decoded sum: sum(w_i * clip(x_i)) as floats, sum(w_i) and the total clip count."""

    weighted_sum: np.ndarray
    weight_sum: int
    clip_count: int


def _uniform01(rng: RandomSource, count: int) -> np.ndarray:
    raw = np.frombuffer(rng(8 * count), dtype="<u8").astype(np.uint64)
    return (raw >> np.uint64(11)).astype(np.float64) * (2.0**-53)


def quantise(
    update: np.ndarray, num_examples: int, params: QuantisationParams, rng: RandomSource
) -> QuantisedUpdate:
    """Clip, weight, stochastically round and wrap one flat float update into ring words.

    Rejects (ShapeError / DTypeError / ValueOutOfRange) instead of broadcasting or coercing.
    """
    if not isinstance(update, np.ndarray):
        raise DTypeError(f"update must be a numpy array, got {type(update).__name__}")
    if update.dtype.kind != "f":
        raise DTypeError(
            f"update must have a float dtype, got {update.dtype}; convert with .astype(np.float32)"
        )
    if update.ndim != 1 or update.shape[0] != params.num_coordinates:
        raise ShapeError(
            f"update must be a 1-D vector of {params.num_coordinates} values, got shape "
            f"{update.shape}"
        )
    if isinstance(num_examples, bool) or not isinstance(num_examples, int | np.integer):
        raise DTypeError(
            f"num_examples must be an int, got {type(num_examples).__name__}; pass the count of "
            "local training examples"
        )
    if num_examples < 1:
        raise ValueOutOfRange(
            f"num_examples must be >= 1, got {num_examples}; a client without examples should "
            "leave the round"
        )
    values = update.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueOutOfRange("update contains NaN or infinity; fix the local training step")
    weight = min(int(num_examples), params.max_weight)
    clip_count = int(np.count_nonzero(np.abs(values) > params.clip_bound))
    scaled = np.clip(values, -params.clip_bound, params.clip_bound) * float(weight)
    scaled *= params.scale
    floor = np.floor(scaled)
    levels = floor + (_uniform01(rng, values.shape[0]) < (scaled - floor))
    ints = np.empty(params.word_count, dtype=np.int64)
    ints[: params.num_coordinates] = levels.astype(np.int64)
    ints[params.num_coordinates] = weight
    ints[params.num_coordinates + 1] = clip_count
    mask = np.uint64((1 << params.bit_width) - 1)
    words = (ints.view(np.uint64) & mask).astype(params.dtype)
    return QuantisedUpdate(words=words, weight=weight, clip_count=clip_count)


def dequantise(words: np.ndarray, params: QuantisationParams, num_clients: int) -> DequantisedSum:
    """Decode the ring sum of ``num_clients`` quantised updates back to floats."""
    if not isinstance(words, np.ndarray) or words.shape != (params.word_count,):
        raise ShapeError(f"expected {params.word_count} words, got {getattr(words, 'shape', None)}")
    modulus = 1 << params.bit_width
    unsigned = words.astype(np.uint64) & np.uint64(modulus - 1)
    if params.bit_width == 64:
        signed = unsigned.view(np.int64)
    else:
        signed = unsigned.astype(np.int64)
        signed = np.where(signed >= (modulus >> 1), signed - modulus, signed)
    weight_sum = int(signed[params.num_coordinates])
    clip_count = int(signed[params.num_coordinates + 1])
    if not 0 <= weight_sum <= num_clients * params.max_weight:
        raise ValueOutOfRange(
            f"decoded weight sum {weight_sum} is outside [0, {num_clients * params.max_weight}]: "
            "a client sent words that were not produced by quantise(); exclude it"
        )
    if not 0 <= clip_count <= num_clients * params.num_coordinates:
        raise ValueOutOfRange(f"decoded clip count {clip_count} is out of range")
    weighted = signed[: params.num_coordinates].astype(np.float64) / params.scale
    return DequantisedSum(weighted_sum=weighted, weight_sum=weight_sum, clip_count=clip_count)
