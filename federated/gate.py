"""The deployment gate: may a model version be promoted to the fleet?

One module, used by the TFF simulation (to record what it *would* have promoted each round) and
by the fleet coordinator (to decide what it *does* promote). The evidence is on-device: each
device evaluates the candidate's exact TFLite artifact on its own held-out names, and only those
metrics reach the coordinator. They are aggregated weighted by example count.

A candidate is promoted when
1. enough devices reported (``min_devices``),
2. its fleet accuracy reaches ``min_accuracy``, and
3. it is not worse than the currently deployed version by more than ``tolerance``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any


class GateError(ValueError):
    """Gate configuration or device metrics are invalid."""


@dataclass(frozen=True)
class GateConfig:
    """Thresholds for promotion (defaults documented in README)."""

    # Fleet-weighted on-device accuracy a version must reach before any Pi runs it.
    min_accuracy: float = 0.70
    # How far (absolute accuracy) a candidate may fall below the deployed version.
    tolerance: float = 0.005
    # Fewer reporting devices than this is too little evidence to change the fleet.
    min_devices: int = 1
    metric: str = "accuracy"

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_accuracy <= 1.0:
            raise GateError(f"min_accuracy must be in [0, 1], got {self.min_accuracy}")
        if not 0.0 <= self.tolerance <= 1.0:
            raise GateError(f"tolerance must be in [0, 1], got {self.tolerance}")
        if self.min_devices < 1:
            raise GateError(f"min_devices must be >= 1, got {self.min_devices}")
        if self.metric not in ("accuracy", "balanced_accuracy", "macro_f1"):
            raise GateError(
                f"metric must be accuracy, balanced_accuracy or macro_f1: {self.metric}"
            )


@dataclass(frozen=True)
class FleetMetrics:
    """Per-device on-device metrics, aggregated weighted by each device's example count."""

    accuracy: float
    balanced_accuracy: float
    macro_f1: float
    n_examples: int
    n_devices: int

    def value(self, metric: str) -> float:
        """The metric the gate compares."""
        return float(getattr(self, metric))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def aggregate_device_metrics(reports: Sequence[Mapping[str, Any]]) -> FleetMetrics:
    """Weighted means of device reports (each with ``n``, ``accuracy``, ...); checks each."""
    if not reports:
        raise GateError("no device reported metrics")
    total = 0
    sums = {"accuracy": 0.0, "balanced_accuracy": 0.0, "macro_f1": 0.0}
    for i, r in enumerate(reports):
        n = r.get("n")
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            raise GateError(f"device report {i}: n must be a positive int, got {n!r}")
        for key in sums:
            v = r.get(key)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0.0 <= v <= 1.0:
                raise GateError(f"device report {i}: {key} must be a number in [0, 1], got {v!r}")
            sums[key] += float(v) * n
        total += n
    return FleetMetrics(
        accuracy=sums["accuracy"] / total,
        balanced_accuracy=sums["balanced_accuracy"] / total,
        macro_f1=sums["macro_f1"] / total,
        n_examples=total,
        n_devices=len(reports),
    )


@dataclass(frozen=True)
class GateDecision:
    """Whether to promote, and a sentence saying why (stored and shown to the operator)."""

    promote: bool
    reason: str
    candidate: float
    deployed: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def decide(cfg: GateConfig, candidate: FleetMetrics, deployed: FleetMetrics | None) -> GateDecision:
    """Apply the gate. ``deployed`` is None when nothing has been promoted yet."""
    m = cfg.metric
    value = candidate.value(m)
    current = deployed.value(m) if deployed is not None else None
    if candidate.n_devices < cfg.min_devices:
        return GateDecision(
            False,
            f"only {candidate.n_devices} device(s) reported, {cfg.min_devices} required",
            value,
            current,
        )
    if value < cfg.min_accuracy:
        return GateDecision(
            False,
            f"fleet {m} {value:.4f} is below the threshold {cfg.min_accuracy:.4f}",
            value,
            current,
        )
    if current is not None and value < current - cfg.tolerance:
        return GateDecision(
            False,
            f"fleet {m} {value:.4f} is more than {cfg.tolerance:.4f} below the deployed "
            f"version's {current:.4f}",
            value,
            current,
        )
    if current is None:
        why = f"fleet {m} {value:.4f} reaches {cfg.min_accuracy:.4f}; first deployment"
    else:
        why = (
            f"fleet {m} {value:.4f} reaches {cfg.min_accuracy:.4f} and is within "
            f"{cfg.tolerance:.4f} of the deployed {current:.4f}"
        )
    return GateDecision(True, why, value, current)
