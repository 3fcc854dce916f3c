"""Quantisation (case 7): no overflow by construction, clip counts, error bound, unbiasedness."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from edge.secagg import DeterministicRandom
from edge.secagg.errors import DTypeError, QuantisationOverflow, ShapeError, ValueOutOfRange
from edge.secagg.quantize import MAX_LEVEL, QuantisationParams, dequantise, quantise


def _params(n: int = 10, bit_width: int = 32, clip: float = 1.0, weight: int = 100, m: int = 8):
    return QuantisationParams.with_largest_scale(
        bit_width=bit_width, clip_bound=clip, max_weight=weight, num_clients=n, num_coordinates=m
    )


def _ring_sum(words: list[np.ndarray], bit_width: int) -> np.ndarray:
    acc = np.zeros_like(words[0], dtype=np.uint64)
    for w in words:
        acc = acc + w.astype(np.uint64)
    return (acc & np.uint64((1 << bit_width) - 1)).astype(words[0].dtype)


def test_parameters_whose_sum_could_reach_the_modulus_are_rejected() -> None:
    with pytest.raises(QuantisationOverflow):
        QuantisationParams(16, 1.0, 10, 100, 8, scale=100.0)  # 100 * 1000 > 2^15 - 1
    with pytest.raises(QuantisationOverflow):
        _params(n=100, bit_width=8)  # 100 clients cannot share 8-bit words
    with pytest.raises(QuantisationOverflow):
        _params(n=10, bit_width=16, m=10_000)  # the clip-count sum alone could wrap


def test_largest_scale_uses_the_range_but_never_exceeds_it() -> None:
    for n, k, clip, w in [(3, 32, 1.0, 1), (100, 32, 0.1, 1000), (7, 24, 3.0, 5), (50, 64, 2.0, 9)]:
        p = _params(n=n, bit_width=k, clip=clip, weight=w)
        half = 2 ** (k - 1) - 1
        assert n * p.level_bound <= half
        assert p.level_bound <= MAX_LEVEL
        best = min(half // n, MAX_LEVEL)
        assert p.level_bound + 1 > best // 2  # within a factor 2 of the best possible


@pytest.mark.parametrize("bit_width", [16, 24, 32, 64])
def test_sum_of_n_extreme_updates_cannot_wrap(bit_width: int) -> None:
    n, m = 5, 8
    p = _params(n=n, bit_width=bit_width, m=m, weight=3)
    for sign in (1.0, -1.0):
        rng = DeterministicRandom(b"q")
        update = np.full(m, sign * 50.0)  # far beyond the clip bound
        words = [quantise(update, 10, p, rng).words for _ in range(n)]
        total = dequantise(_ring_sum(words, bit_width), p, n)
        assert total.weight_sum == n * 3
        assert total.clip_count == n * m
        assert np.all(np.sign(total.weighted_sum) == sign)
        assert np.all(np.abs(total.weighted_sum - sign * n * 3 * 1.0) < n / p.scale)


def test_clipped_coordinates_are_counted() -> None:
    p = _params(clip=0.5, m=6)
    update = np.array([0.1, -0.6, 0.5, 2.0, -0.49, np.float32(0.5000001)])
    q = quantise(update, 1, p, DeterministicRandom(b"c"))
    assert q.clip_count == 3
    assert q.weight == 1


def test_weight_is_the_example_count_capped_at_max_weight() -> None:
    p = _params(weight=10, m=2)
    assert quantise(np.zeros(2), 7, p, DeterministicRandom(b"w")).weight == 7
    assert quantise(np.zeros(2), 70, p, DeterministicRandom(b"w")).weight == 10


@settings(max_examples=40, deadline=None)
@given(
    update=arrays(np.float64, 16, elements=st.floats(-3.0, 3.0, allow_nan=False)),
    examples=st.integers(1, 400),
    bit_width=st.sampled_from([16, 32, 64]),
    seed=st.binary(min_size=1, max_size=8),
)
def test_quantisation_error_is_below_one_level(
    update: np.ndarray, examples: int, bit_width: int, seed: bytes
) -> None:
    p = _params(n=4, bit_width=bit_width, clip=1.0, weight=100, m=16)
    q = quantise(update, examples, p, DeterministicRandom(seed))
    decoded = dequantise(q.words, p, 1)
    target = min(examples, 100) * np.clip(update, -1.0, 1.0)
    assert np.all(np.abs(decoded.weighted_sum - target) < p.error_bound)
    assert decoded.weight_sum == min(examples, 100)
    assert decoded.clip_count == int(np.count_nonzero(np.abs(update) > 1.0))


def test_stochastic_rounding_is_unbiased() -> None:
    p = QuantisationParams(32, 1.0, 1, 1, 20_000, scale=10.0)
    update = np.full(20_000, 0.037)  # 0.37 levels: rounds to 0 or 1
    decoded = dequantise(quantise(update, 1, p, DeterministicRandom(b"u")).words, p, 1)
    assert set(np.unique(decoded.weighted_sum)) == {0.0, 0.1}
    assert abs(float(decoded.weighted_sum.mean()) - 0.037) < 0.002


@pytest.mark.parametrize(
    ("update", "error"),
    [
        (np.zeros(7), ShapeError),  # wrong length: never broadcast
        (np.zeros((2, 8)), ShapeError),
        (np.zeros(8, dtype=np.int64), DTypeError),
        (np.array([np.nan] + [0.0] * 7), ValueOutOfRange),
        (np.array([np.inf] + [0.0] * 7), ValueOutOfRange),
    ],
    ids=["length", "2d", "int-dtype", "nan", "inf"],
)
def test_bad_updates_are_rejected_not_coerced(update: np.ndarray, error: type) -> None:
    with pytest.raises(error):
        quantise(update, 1, _params(m=8), DeterministicRandom(b"x"))


def test_example_count_must_be_a_positive_int() -> None:
    with pytest.raises(ValueError):
        quantise(np.zeros(8), 0, _params(m=8), DeterministicRandom(b"x"))
    with pytest.raises(TypeError):
        quantise(np.zeros(8), 1.5, _params(m=8), DeterministicRandom(b"x"))  # type: ignore[arg-type]
