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


def _two(acc: float, bal: float, devices: int = 3) -> FleetMetrics:
    return FleetMetrics(acc, bal, acc, 300, devices)


@pytest.mark.parametrize(
    ("candidate", "deployed", "promote", "why"),
    [
        # Accuracy fine, balanced accuracy below its floor: held back, and the reason says which.
        (_two(0.80, 0.20), None, False, "fleet balanced_accuracy 0.2000 is below the threshold"),
        (_two(0.60, 0.50), None, False, "fleet accuracy 0.6000 is below the threshold"),
        # Accuracy holds against the deployed version, balanced accuracy fell too far.
        (_two(0.80, 0.40), _two(0.80, 0.45), False, "fleet balanced_accuracy 0.4000 is more"),
        (_two(0.80, 0.445), _two(0.80, 0.45), True, "balanced_accuracy 0.4450 reaches"),
        (_two(0.80, 0.50), None, True, "fleet accuracy 0.8000 reaches 0.7000; fleet balanced"),
    ],
)
def test_the_gate_requires_accuracy_and_balanced_accuracy_by_default(
    candidate: FleetMetrics, deployed: FleetMetrics | None, promote: bool, why: str
) -> None:
    d = decide(GateConfig(), candidate, deployed)
    assert d.promote is promote and why in d.reason, d.reason
    if not promote:  # only the metric that held it back is named
        assert d.reason.count("fleet ") == 1


def test_both_checks_are_json_able_and_can_be_turned_off() -> None:
    import json
    from dataclasses import asdict

    cfg = GateConfig(min_balanced_accuracy=0.0, balanced_tolerance=1.0)
    assert GateConfig(**json.loads(json.dumps(asdict(cfg)))) == cfg
    assert decide(cfg, _two(0.80, 0.05), _two(0.80, 0.9)).promote
    with pytest.raises(GateError, match="min_balanced_accuracy"):
        GateConfig(min_balanced_accuracy=1.2)


def test_the_flags_reach_the_gate() -> None:
    import argparse

    from pifed import flags

    p = argparse.ArgumentParser()
    flags.add_round_settings(p)
    args = p.parse_args(
        ["--gate-min-balanced-accuracy", "0.4", "--gate-balanced-tolerance", "0.02"]
    )
    gate = flags.round_settings(args).gate  # type: ignore[attr-defined]
    assert (gate.min_balanced_accuracy, gate.balanced_tolerance) == (0.4, 0.02)
    assert flags.round_settings(p.parse_args([])).gate == GateConfig()  # type: ignore[attr-defined]
