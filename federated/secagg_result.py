"""What a secure-aggregation round yields: :class:`AggregateResult`, decoded from the ring sum.

Once every mask is removed (:mod:`federated.secagg_unmask`), the server holds the exact sum of
the survivors' quantised words mod ``2^k``; :func:`decode_aggregate` turns it back into the
weighted sum of their updates (one array per configured vector), their weight sum and their
clip count, together with who took part.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from edge.secagg.config import SecAggConfig
from edge.secagg.errors import ValueOutOfRange
from edge.secagg.quantize import dequantise
from edge.secagg.stages import Stage

__all__ = ["AggregateResult", "decode_aggregate"]


@dataclass(frozen=True, eq=False)
class AggregateResult:
    """What the server learns: the survivors' weighted sum, their weight sum, and who took part.

    ``weighted_sum[i]`` approximates sum over survivors of ``w_u * clip(x_u[i])`` to within
    ``len(survivors) * config.quantisation.error_bound`` per coordinate; ``ring_sum`` is the exact
    sum of the quantised words mod ``2^k``. ``culprits`` names the clients excluded for
    misbehaviour (a bad signature, shares that do not open, a bad share at unmasking, ...) with
    the reason; each of them is in ``dropped`` too.
    """

    weighted_sum: tuple[np.ndarray, ...]
    weight_sum: int
    clip_count: int
    survivors: tuple[int, ...]
    dropped: Mapping[int, Stage]
    ring_sum: np.ndarray
    culprits: Mapping[int, str] = field(default_factory=dict)

    def mean(self) -> tuple[np.ndarray, ...]:
        """Weighted FedAvg mean: weighted_sum / weight_sum."""
        if self.weight_sum <= 0:
            raise ValueOutOfRange("weight sum is 0; no examples were aggregated")
        return tuple(vec / self.weight_sum for vec in self.weighted_sum)


def decode_aggregate(
    ring_sum: np.ndarray,
    config: SecAggConfig,
    survivors: tuple[int, ...],
    dropped: Mapping[int, Stage],
    culprits: Mapping[int, str],
) -> AggregateResult:
    """Decode the unmasked ``ring_sum`` of ``survivors`` into the round's result.

    Why: the sum was masked and added as ring words; the caller needs floats split back into
    the configured vectors. A weight or clip-count word out of range fails the round, since
    secure aggregation hides which survivor sent it.
    """
    try:
        decoded = dequantise(ring_sum, config.quantisation, len(survivors))
    except ValueOutOfRange as exc:
        raise ValueOutOfRange(
            f"{exc} (the weight or clip-count word of the unmasked sum is out of range; "
            "secure aggregation hides which survivor sent it, so the round fails)"
        ) from exc
    parts = []
    start = 0
    for length in config.vector_lengths:
        parts.append(decoded.weighted_sum[start : start + length])
        start += length
    return AggregateResult(
        weighted_sum=tuple(parts),
        weight_sum=decoded.weight_sum,
        clip_count=decoded.clip_count,
        survivors=survivors,
        dropped=dropped,
        ring_sum=ring_sum,
        culprits=culprits,
    )
