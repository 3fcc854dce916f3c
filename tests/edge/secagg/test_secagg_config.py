"""SecAggConfig and StageTimeouts validate every argument on construction (case 9 included)."""

from __future__ import annotations

import math

import pytest

from edge.secagg import QuantisationOverflow, SecAggConfig, StageTimeouts, default_threshold


@pytest.mark.parametrize(
    ("n", "t"), [(2, 2), (3, 3), (4, 3), (5, 4), (10, 7), (25, 17), (50, 34), (100, 67)]
)
def test_default_threshold_is_two_thirds_plus_one(n: int, t: int) -> None:
    assert default_threshold(n) == t
    assert SecAggConfig(client_ids=tuple(range(1, n + 1)), vector_lengths=(3,)).t == t
    assert t > 2 * n / 3 or t == n


def test_client_ids_are_stored_sorted_and_the_digest_depends_on_them() -> None:
    a = SecAggConfig(client_ids=(3, 1, 2), vector_lengths=(4,))
    assert a.client_ids == (1, 2, 3)
    assert a.digest == SecAggConfig(client_ids=(1, 2, 3), vector_lengths=(4,)).digest
    assert a.digest != SecAggConfig(client_ids=(1, 2, 4), vector_lengths=(4,)).digest
    assert a.digest != SecAggConfig(client_ids=(1, 2, 3), vector_lengths=(4,), bit_width=24).digest


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"client_ids": (1,)}, ValueError),
        ({"client_ids": (1, 1, 2)}, ValueError),
        ({"client_ids": (0, 1)}, ValueError),
        ({"client_ids": (1, 2**32)}, ValueError),
        ({"client_ids": (1, True)}, TypeError),
        ({"client_ids": "12"}, TypeError),
        ({"vector_lengths": ()}, TypeError),
        ({"vector_lengths": (0,)}, ValueError),
        ({"threshold": 2}, ValueError),  # n = 5: not a strict majority
        ({"threshold": 6}, ValueError),
        ({"threshold": 3.0}, TypeError),
        ({"bit_width": 4}, ValueError),
        ({"bit_width": 65}, ValueError),
        ({"clip_bound": 0.0}, ValueError),
        ({"clip_bound": math.inf}, ValueError),
        ({"max_weight": 0}, ValueError),
        ({"scale": -1.0}, ValueError),
        ({"scale": 1e12}, QuantisationOverflow),
        ({"bit_width": 8, "max_weight": 100}, QuantisationOverflow),
        ({"timeouts": 30.0}, TypeError),
    ],
)
def test_invalid_configurations_are_rejected(kwargs: dict[str, object], error: type) -> None:
    base: dict[str, object] = {"client_ids": (1, 2, 3, 4, 5), "vector_lengths": (4,)}
    base.update(kwargs)
    with pytest.raises(error):
        SecAggConfig(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [math.inf, math.nan, 0.0, -1.0])
def test_every_stage_timeout_must_be_finite_and_positive(value: float) -> None:
    for name in ("advertise_keys", "share_keys", "masked_input_collection", "unmasking"):
        with pytest.raises(ValueError):
            StageTimeouts(**{name: value})


def test_explicit_majority_threshold_is_accepted() -> None:
    assert SecAggConfig(client_ids=(1, 2, 3, 4, 5), vector_lengths=(4,), threshold=3).t == 3
