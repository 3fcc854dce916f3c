"""The run layer: seeded client sampling and the start of a run from a model (--init-model)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from federated.simulation.config import SimulationConfig, SimulationConfigError
from federated.simulation.run import load_start, sample_clients
from model.dataset import load_names


def test_client_sampling_is_seeded_and_distinct() -> None:
    draws = [sample_clients(100, 10, np.random.default_rng(7)) for _ in range(2)]
    assert draws[0] == draws[1]
    assert len(set(draws[0])) == 10 and all(0 <= i < 100 for i in draws[0])
    assert draws[0] != sample_clients(100, 10, np.random.default_rng(8))


@pytest.mark.slow
def test_init_model_brings_its_vocabulary_and_weights_and_must_fit(
    trained_run: Path, data_dir: Path, tmp_path: Path
) -> None:
    """--init-model: a simulation can start where a fleet starts; a misfit names the flag."""
    from edge.trainer import OnDeviceTrainer
    from model.manifest import ModelManifest

    ds = load_names(data_dir)
    folder = trained_run / "model"
    manifest = ModelManifest.load(folder)
    units, embed = manifest.model_config["units"], manifest.model_config["embed_dim"]
    cfg = SimulationConfig(units=units, embed_dim=embed, init_model=str(folder))
    vocab, weights = load_start(cfg, ds)
    assert vocab == manifest.vocab
    for got, want in zip(weights, OnDeviceTrainer(folder).weights(), strict=True):
        assert np.array_equal(got, want)
    with pytest.raises(SimulationConfigError, match=f"pass --units {units}"):
        load_start(replace(cfg, units=units + 1), ds)
    two = tmp_path / "two-languages"
    two.mkdir()
    (two / "English.txt").write_text("Smith\nJones\n")
    (two / "Italian.txt").write_text("Rossi\nBianchi\n")
    with pytest.raises(SimulationConfigError, match="languages"):
        load_start(cfg, load_names(two))
    with pytest.raises(SimulationConfigError, match="--init-model"):
        load_start(replace(cfg, init_model=str(tmp_path / "nowhere")), ds)
