"""The deployment gate, table-driven."""

from __future__ import annotations

import pytest

from federated.gate import (
    FleetMetrics,
    GateConfig,
    GateError,
    aggregate_device_metrics,
    decide,
)


def _fleet(acc: float, devices: int = 3) -> FleetMetrics:
    return FleetMetrics(acc, acc, acc, 300, devices)


def test_aggregation_is_weighted_by_examples() -> None:
    fm = aggregate_device_metrics(
        [
            {"n": 100, "accuracy": 0.9, "balanced_accuracy": 0.5, "macro_f1": 0.4},
            {"n": 300, "accuracy": 0.5, "balanced_accuracy": 0.5, "macro_f1": 0.4},
        ]
    )
    assert fm.accuracy == pytest.approx((90 + 150) / 400)
    assert fm.n_examples == 400 and fm.n_devices == 2


@pytest.mark.parametrize(
    "report",
    [
        {"n": 0, "accuracy": 0.5, "balanced_accuracy": 0.5, "macro_f1": 0.5},
        {"n": 10, "accuracy": 1.5, "balanced_accuracy": 0.5, "macro_f1": 0.5},
        {"n": 10, "accuracy": "0.9", "balanced_accuracy": 0.5, "macro_f1": 0.5},
        {"n": True, "accuracy": 0.9, "balanced_accuracy": 0.5, "macro_f1": 0.5},
        {"n": 10, "balanced_accuracy": 0.5, "macro_f1": 0.5},
    ],
)
def test_hostile_device_reports_are_refused(report: dict) -> None:
    with pytest.raises(GateError, match="device report 0"):
        aggregate_device_metrics([report])


@pytest.mark.parametrize(
    ("candidate", "deployed", "promote", "why"),
    [
        (_fleet(0.80), None, True, "first deployment"),
        (_fleet(0.60), None, False, "below the threshold"),
        (_fleet(0.80), _fleet(0.803), True, "within"),
        (_fleet(0.80), _fleet(0.81), False, "below the deployed"),
        (_fleet(0.90, devices=1), None, False, "device(s) reported"),
    ],
)
def test_gate_decisions(
    candidate: FleetMetrics, deployed: FleetMetrics | None, promote: bool, why: str
) -> None:
    d = decide(GateConfig(min_accuracy=0.7, tolerance=0.005, min_devices=2), candidate, deployed)
    assert d.promote is promote and why in d.reason


def test_config_is_validated() -> None:
    with pytest.raises(GateError):
        GateConfig(min_accuracy=1.5)
    with pytest.raises(GateError):
        GateConfig(metric="loss")
