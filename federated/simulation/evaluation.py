"""How a simulated round is judged and recorded: the way the fleet judges it.

What a Pi owner wants to know before touching hardware is only worth knowing if the simulation
tells the truth about the fleet, so a round's global model is never scored in Keras:

1. it is exported to the TFLite artifacts a Pi runs (float and int8, builtins only,
   ``model.export``);
2. every simulated device evaluates them on its own held-out names through the edge runtime
   (``edge.runtime.Classifier``, ``edge.evaluate.evaluate_names``), and only those metrics are
   aggregated, weighted by examples (``federated.gate.aggregate_device_metrics``);
3. the deployment gate (``federated.gate.decide``) says whether the fleet would have promoted
   that version, against the version it had deployed so far (:class:`GateTracker`).

The global, name-disjoint test split is evaluated through the same artifacts. Each evaluated
round becomes one :class:`RoundRecord`; a run's records and final weights are a
:class:`RunResult`.

TensorFlow-free at import: the export imports TensorFlow only when it runs.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.evaluate import evaluate_names
from edge.runtime import Classifier
from federated.gate import FleetMetrics, GateConfig, aggregate_device_metrics, decide
from federated.simulation.config import EVAL_KINDS, SimulationConfig
from model.config import ModelConfig

if TYPE_CHECKING:  # data imports TensorFlow; this module stays importable without it
    from federated.simulation.data import SimulationData


@dataclass(frozen=True)
class RoundRecord:
    """One round of one run: training, on-device evaluation, the gate's decision, timings."""

    run: str
    round: int
    version: str
    clients_sampled: int
    train_loss: float | None
    train_accuracy: float | None
    fleet_accuracy: float  # on-device, gate_kind artifact, weighted by held-out examples
    fleet_balanced_accuracy: float
    fleet_macro_f1: float
    fleet_float_accuracy: float
    fleet_float_balanced_accuracy: float
    fleet_examples: int
    fleet_devices: int
    test_accuracy: float  # global name-disjoint test split, float artifact
    test_balanced_accuracy: float
    test_int8_accuracy: float
    test_int8_balanced_accuracy: float
    promote: bool | None
    gate_reason: str
    deployed_version: str | None
    train_seconds: float
    eval_seconds: float
    aggregator: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


@dataclass
class RunResult:
    """One run (centralized, federated-plain or federated-secure) and its final weights."""

    name: str
    rounds: list[RoundRecord]
    weights: list[np.ndarray]
    seconds: float

    @property
    def final(self) -> RoundRecord:
        """The last round's record."""
        return self.rounds[-1]


RoundCallback = Callable[[RoundRecord], None]


@dataclass(frozen=True)
class Evaluation:
    """On-device fleet metrics per artifact kind and global test-split metrics per kind."""

    fleet: dict[str, FleetMetrics]
    test: dict[str, dict[str, Any]]


def export_candidate(
    keras_model: Any,
    model_config: ModelConfig,
    data: SimulationData,
    calibration_ids: np.ndarray,
    version: str,
    out_dir: str | os.PathLike[str],
) -> Path:
    """Export the float and int8 artifacts (with their manifest) a Pi would receive."""
    from model.export import export_artifacts

    export_artifacts(
        keras_model,
        model_config,
        data.vocab,
        data.languages,
        calibration_ids,
        Path(out_dir),
        version=version,
        kinds=EVAL_KINDS,
    )
    return Path(out_dir)


def fleet_evaluation(model_dir: str | os.PathLike[str], data: SimulationData) -> Evaluation:
    """Every device evaluates each artifact on its own held-out names; reports are aggregated."""
    fleet: dict[str, FleetMetrics] = {}
    test: dict[str, dict[str, Any]] = {}
    for kind in EVAL_KINDS:
        clf = Classifier.from_dir(model_dir, kind)
        reports = [
            evaluate_names(clf, list(c.holdout_names), c.holdout_labels)
            for c in data.clients
            if len(c.holdout_names) > 0
        ]
        fleet[kind] = aggregate_device_metrics(reports)
        test[kind] = evaluate_names(clf, list(data.test_names), data.test_labels)
    return Evaluation(fleet, test)


def evaluate_candidate(
    keras_model: Any,
    model_config: ModelConfig,
    data: SimulationData,
    calibration_ids: np.ndarray,
    version: str,
    workdir: str | os.PathLike[str],
) -> Evaluation:
    """Export a round's model to a scratch folder, evaluate it on-device, delete the folder."""
    with tempfile.TemporaryDirectory(dir=workdir, prefix=f"{version}-") as tmp:
        export_candidate(keras_model, model_config, data, calibration_ids, version, tmp)
        return fleet_evaluation(tmp, data)


class GateTracker:
    """The fleet's deployed version across rounds, as the coordinator would track it."""

    def __init__(self, cfg: GateConfig) -> None:
        self.cfg = cfg
        self.deployed: FleetMetrics | None = None
        self.version: str | None = None

    def judge(self, version: str, candidate: FleetMetrics) -> tuple[bool, str]:
        """The gate's decision on ``candidate``; a promoted one becomes the deployed version."""
        decision = decide(self.cfg, candidate, self.deployed)
        if decision.promote:
            self.deployed, self.version = candidate, version
        return decision.promote, decision.reason


def round_record(
    run: str,
    rnd: int,
    version: str,
    sampled: int,
    train: dict[str, float] | None,
    ev: Evaluation,
    cfg: SimulationConfig,
    gate: GateTracker | None,
    train_seconds: float,
    eval_seconds: float,
    aggregator: dict[str, float] | None = None,
) -> RoundRecord:
    """One evaluated round's record; ``gate`` None is the ungated centralized reference."""
    fleet = ev.fleet[cfg.gate_kind]
    promote: bool | None = None
    reason = "not gated (centralized reference)"
    if gate is not None:
        promote, reason = gate.judge(version, fleet)
    return RoundRecord(
        run=run,
        round=rnd,
        version=version,
        clients_sampled=sampled,
        train_loss=None if train is None else train["loss"],
        train_accuracy=None if train is None else train["accuracy"],
        fleet_accuracy=fleet.accuracy,
        fleet_balanced_accuracy=fleet.balanced_accuracy,
        fleet_macro_f1=fleet.macro_f1,
        fleet_float_accuracy=ev.fleet["float"].accuracy,
        fleet_float_balanced_accuracy=ev.fleet["float"].balanced_accuracy,
        fleet_examples=fleet.n_examples,
        fleet_devices=fleet.n_devices,
        test_accuracy=float(ev.test["float"]["accuracy"]),
        test_balanced_accuracy=float(ev.test["float"]["balanced_accuracy"]),
        test_int8_accuracy=float(ev.test["int8"]["accuracy"]),
        test_int8_balanced_accuracy=float(ev.test["int8"]["balanced_accuracy"]),
        promote=promote,
        gate_reason=reason,
        deployed_version=None if gate is None else gate.version,
        train_seconds=train_seconds,
        eval_seconds=eval_seconds,
        aggregator=aggregator or {},
    )
