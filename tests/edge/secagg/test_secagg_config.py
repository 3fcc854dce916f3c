"""SecAggConfig and StageTimeouts validate every argument on construction (case 9 included)."""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any

import pytest

from edge.secagg import (
    ConfigError,
    QuantisationOverflow,
    SecAggConfig,
    SecAggError,
    StageTimeouts,
    default_threshold,
)


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


def test_explicit_majority_threshold_is_accepted_only_without_colluders() -> None:
    ids = (1, 2, 3, 4, 5)
    assert SecAggConfig(client_ids=ids, vector_lengths=(4,), threshold=3, colluders=0).t == 3
    with pytest.raises(ValueError, match=r"\(n \+ c\)//2 \+ 1 = 4"):
        SecAggConfig(client_ids=ids, vector_lengths=(4,), threshold=3)  # c = (5 - 1)//3 = 1


@pytest.mark.parametrize("n", range(2, 40))
def test_threshold_floor_is_t_greater_than_half_of_n_plus_c(n: int) -> None:
    ids = tuple(range(1, n + 1))
    for c in range(n - 1):
        accepted = []
        for t in range(1, n + 1):
            with contextlib.suppress(ValueError):
                accepted.append(SecAggConfig(ids, (1,), threshold=t, colluders=c).t)
        # exactly the t with 2t > n + c (and t >= 2) pass
        assert accepted == [t for t in range(2, n + 1) if 2 * t > n + c]
        if accepted:
            default = SecAggConfig(ids, (1,), colluders=c)
            assert default.t in accepted and default.c == c
    assert SecAggConfig(ids, (1,)).c == (n - 1) // 3
    with pytest.raises(ValueError, match="colluders"):
        SecAggConfig(ids, (1,), colluders=n - 1)


def test_active_and_colluders_are_bound_into_the_digest_and_the_dict() -> None:
    ids = (1, 2, 3, 4, 5, 6, 7)
    base = SecAggConfig(ids, (3,))
    semi = SecAggConfig(ids, (3,), active=False)
    stated = SecAggConfig(ids, (3,), colluders=base.c)
    assert semi.digest != base.digest
    assert stated.digest == base.digest and stated.to_dict() != base.to_dict()
    assert "active" not in base.to_dict() and semi.to_dict()["active"] is False
    assert SecAggConfig.from_dict(semi.to_dict()) == semi
    with pytest.raises(ConfigError, match="active"):
        SecAggConfig.from_dict({**base.to_dict(), "active": 1})
    with pytest.raises(ConfigError, match="colluders"):
        SecAggConfig.from_dict({**base.to_dict(), "colluders": 1.0})


# -- to_dict / from_dict ---------------------------------------------------------------------------

ROUND_TRIP_CONFIGS: list[dict[str, Any]] = [
    {"client_ids": (1, 2, 3), "vector_lengths": (3,)},
    {
        "client_ids": (9, 4, 7, 1, 2),
        "vector_lengths": (4, 10, 1),
        "threshold": 3,
        "colluders": 0,
        "active": False,
        "bit_width": 24,
        "clip_bound": 0.25,
        "max_weight": 10,
        "timeouts": StageTimeouts(1.5, 2, 3.25, 4),
    },
    {"client_ids": (1, 2**32 - 1), "vector_lengths": (7,), "bit_width": 64, "scale": 1e6},
    {"client_ids": (1, 2), "vector_lengths": (2,), "clip_bound": 3},  # an int clip bound
]


@pytest.mark.parametrize("kwargs", ROUND_TRIP_CONFIGS)
def test_to_dict_round_trips_through_json(kwargs: dict[str, Any]) -> None:
    config = SecAggConfig(**kwargs)
    data = config.to_dict()
    assert set(data) == {
        "client_ids",
        "vector_lengths",
        "threshold",
        "bit_width",
        "clip_bound",
        "max_weight",
        "timeouts",
    } | ({"scale"} if config.scale is not None else set()) | (
        {"active"} if not config.active else set()
    ) | ({"colluders"} if config.colluders is not None else set())
    assert data["client_ids"] == sorted(config.client_ids)
    timeouts = config.timeouts
    assert data["timeouts"] == [
        timeouts.advertise_keys,
        timeouts.share_keys,
        timeouts.masked_input_collection,
        timeouts.unmasking,
    ]
    text = json.dumps(data, allow_nan=False)  # plain JSON, no default= needed
    back = SecAggConfig.from_dict(json.loads(text))
    assert back == config
    assert back.digest == config.digest
    assert back.quantisation == config.quantisation
    assert back.to_dict() == data


def _valid() -> dict[str, Any]:
    return json.loads(json.dumps(SecAggConfig(client_ids=(1, 2, 3), vector_lengths=(3,)).to_dict()))


def test_from_dict_accepts_a_null_scale_and_int_numbers() -> None:
    data = _valid()
    data["scale"] = None
    data["clip_bound"] = 1
    data["timeouts"] = [30, 60, 300, 60]
    assert SecAggConfig.from_dict(data) == SecAggConfig(client_ids=(1, 2, 3), vector_lengths=(3,))


@pytest.mark.parametrize(
    "key",
    [
        "client_ids",
        "vector_lengths",
        "threshold",
        "bit_width",
        "clip_bound",
        "max_weight",
        "timeouts",
    ],
)
def test_from_dict_rejects_a_missing_field_by_name(key: str) -> None:
    data = _valid()
    del data[key]
    with pytest.raises(ConfigError, match=f"missing field.*{key}"):
        SecAggConfig.from_dict(data)


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("client_ids", "123", "'client_ids'"),
        ("client_ids", 3, "'client_ids'"),
        ("client_ids", [1, True, 3], r"'client_ids'\[1\]"),
        ("client_ids", [1, 2.0, 3], r"'client_ids'\[1\]"),
        ("client_ids", [1, "2", 3], r"'client_ids'\[1\]"),
        ("client_ids", [1, 1, 2], "duplicates"),
        ("client_ids", [0, 1, 2], "client id 0"),
        ("client_ids", [1], "at least 2 clients"),
        ("vector_lengths", 3, "'vector_lengths'"),
        ("vector_lengths", [3.0], r"'vector_lengths'\[0\]"),
        ("vector_lengths", [], "vector_lengths"),
        ("vector_lengths", [0], "vector length 0"),
        ("threshold", "3", "'threshold'"),
        ("threshold", 3.0, "'threshold'"),
        ("threshold", True, "'threshold'"),
        ("threshold", 1, "threshold 1"),
        ("bit_width", 32.0, "'bit_width'"),
        ("bit_width", False, "'bit_width'"),
        ("bit_width", None, "'bit_width'"),
        ("bit_width", 4, "bit_width must be in 8..64"),
        ("clip_bound", "1.0", "'clip_bound'"),
        ("clip_bound", True, "'clip_bound'"),
        ("clip_bound", None, "'clip_bound'"),
        ("clip_bound", 0.0, "clip_bound must be finite"),
        ("max_weight", 1000.5, "'max_weight'"),
        ("max_weight", "1000", "'max_weight'"),
        ("max_weight", 0, "max_weight"),
        ("max_weight", 10**9, "weight"),  # QuantisationOverflow, wrapped
        ("timeouts", 30.0, "'timeouts'"),
        ("timeouts", {"advertise_keys": 30.0}, "'timeouts'"),
        ("timeouts", [30.0, 60.0, 300.0], "'timeouts' must list 4"),
        ("timeouts", [30.0, 60.0, 300.0, 60.0, 1.0], "'timeouts' must list 4"),
        ("timeouts", [30.0, "60", 300.0, 60.0], r"'timeouts'\[1\]"),
        ("timeouts", [30.0, 60.0, True, 60.0], r"'timeouts'\[2\]"),
        ("timeouts", [30.0, 60.0, 300.0, 0.0], "timeout unmasking"),
        ("scale", "1e6", "'scale'"),
        ("scale", True, "'scale'"),
        ("scale", -1.0, "scale must be finite"),
    ],
)
def test_from_dict_rejects_a_bad_field_by_name(key: str, value: object, named: str) -> None:
    data = _valid()
    data[key] = value
    with pytest.raises(ConfigError, match=named) as info:
        SecAggConfig.from_dict(data)
    assert isinstance(info.value, SecAggError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("extra", ["t", "quantisation", "Scale", "digest"])
def test_from_dict_rejects_unknown_fields(extra: str) -> None:
    data = _valid()
    data[extra] = 1
    with pytest.raises(ConfigError, match=f"unknown field.*'{extra}'"):
        SecAggConfig.from_dict(data)


@pytest.mark.parametrize("data", [None, [], "{}", [("client_ids", [1, 2])]])
def test_from_dict_needs_a_mapping(data: object) -> None:
    with pytest.raises(ConfigError, match="needs a dict"):
        SecAggConfig.from_dict(data)  # type: ignore[arg-type]
