"""decode_aggregate: the unmasked ring sum back to per-vector weighted sums, or a clear failure."""

from __future__ import annotations

import numpy as np
import pytest

from edge.secagg import DeterministicRandom, SecAggConfig, Stage
from edge.secagg.errors import ValueOutOfRange
from edge.secagg.quantize import quantise
from federated.secagg_result import decode_aggregate


def _config() -> SecAggConfig:
    return SecAggConfig(client_ids=(1, 2, 3), vector_lengths=(2, 3), active=False)


def test_the_ring_sum_decodes_into_the_configured_vectors() -> None:
    config = _config()
    quant = config.quantisation
    rng = DeterministicRandom(b"decode")
    updates = {1: np.array([0.1, -0.2, 0.3, 0.05, -0.4]), 2: np.array([-0.3, 0.2, 0.0, 0.1, 0.2])}
    examples = {1: 7, 2: 3}
    ring = np.zeros(quant.word_count, dtype=quant.dtype)
    for cid, update in updates.items():
        np.add(ring, quantise(update, examples[cid], quant, rng).words, out=ring)
    ring &= quant.dtype.type((1 << quant.bit_width) - 1)

    result = decode_aggregate(ring, config, (1, 2), {3: Stage.SHARE_KEYS}, {})

    expected = sum(examples[cid] * updates[cid] for cid in updates)
    assert [part.shape for part in result.weighted_sum] == [(2,), (3,)]
    got = np.concatenate(result.weighted_sum)
    assert np.all(np.abs(got - expected) < 2 * quant.error_bound)
    assert result.weight_sum == 10 and result.clip_count == 0
    assert result.survivors == (1, 2) and dict(result.dropped) == {3: Stage.SHARE_KEYS}
    assert result.ring_sum is ring


def test_a_weight_word_out_of_range_fails_the_round_and_says_why() -> None:
    config = _config()
    quant = config.quantisation
    ring = np.zeros(quant.word_count, dtype=quant.dtype)
    ring[quant.num_coordinates] = 2 * quant.max_weight + 1  # more than two clients can weigh
    with pytest.raises(ValueOutOfRange, match="secure aggregation hides which survivor"):
        decode_aggregate(ring, config, (1, 2), {}, {})
