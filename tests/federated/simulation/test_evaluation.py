"""Export, on-device evaluation and the gate across rounds: real data, real TFLite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from federated.gate import FleetMetrics, GateConfig
from federated.simulation.evaluation import GateTracker
from model.dataset import NamesDataset, load_names


@pytest.fixture(scope="module")
def small_ds(data_dir: Path) -> NamesDataset:
    ds = load_names(data_dir)
    return ds.subset(np.arange(0, len(ds), 6))  # every 6th row: all 18 languages, ~3,000 names


def _fleet(acc: float) -> FleetMetrics:
    return FleetMetrics(acc, acc, acc, n_examples=100, n_devices=2)


def test_gate_tracker_follows_the_deployed_version_across_rounds() -> None:
    gate = GateTracker(GateConfig(min_accuracy=0.5, tolerance=0.01))
    promoted, reason = gate.judge("r001", _fleet(0.4))
    assert not promoted and "below the threshold" in reason and gate.version is None
    promoted, reason = gate.judge("r002", _fleet(0.6))
    assert promoted and "first deployment" in reason and gate.version == "r002"
    promoted, reason = gate.judge("r003", _fleet(0.58))  # 2 points worse than deployed 0.60
    assert not promoted and "below the deployed" in reason and gate.version == "r002"
    promoted, _ = gate.judge("r004", _fleet(0.595))  # within the 1-point tolerance
    assert promoted and gate.version == "r004"


@pytest.mark.slow
def test_fleet_metrics_are_the_devices_reports_weighted_by_examples(
    small_ds: NamesDataset, tmp_path: Path
) -> None:
    from edge.runtime import Classifier
    from federated.simulation.config import EVAL_KINDS
    from federated.simulation.data import (
        build_model,
        initial_weights,
        prepare_data,
        simulation_model_config,
    )
    from federated.simulation.evaluation import export_candidate, fleet_evaluation
    from model.metrics import classification_metrics

    data = prepare_data(small_ds, 3, "language", seed=0)
    cfg = simulation_model_config(data, units=8, embed_dim=4)
    model = build_model(cfg, initial_weights(cfg, 0))
    model_dir = export_candidate(model, cfg, data, data.train_ids, "t1", tmp_path / "m")
    ev = fleet_evaluation(model_dir, data)
    holdout = sum(len(c.holdout_names) for c in data.clients)
    names = [n for c in data.clients for n in c.holdout_names]
    labels = np.concatenate([c.holdout_labels for c in data.clients])
    for kind in EVAL_KINDS:
        assert ev.fleet[kind].n_examples == holdout and ev.fleet[kind].n_devices == 3
        assert ev.test[kind]["n"] == len(data.test_names)
        # Per-device accuracy weighted by examples is the pooled accuracy over all devices.
        clf = Classifier.from_dir(model_dir, kind)
        pred = np.argmax(clf.logits(clf.vocab.encode(names)), axis=1)
        pooled = classification_metrics(labels, pred, len(data.languages))
        assert ev.fleet[kind].accuracy == pytest.approx(pooled["accuracy"], abs=1e-9)
