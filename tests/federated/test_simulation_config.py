"""SimulationConfig, client sampling, the gate tracker, --workers parsing and --init-model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from federated.gate import FleetMetrics, GateConfig
from federated.sim_workers import WorkerAddress, WorkerAddressError, parse_workers
from federated.simulation import (
    SimulationConfig,
    SimulationConfigError,
    _GateTracker,
    load_start,
    sample_clients,
)
from model.dataset import load_names


@pytest.mark.parametrize(
    ("overrides", "flag"),
    [
        ({"clients": 0}, "--clients"),
        ({"rounds": 0}, "--rounds"),
        ({"local_epochs": 0}, "--local-epochs"),
        ({"local_steps": 0}, "--local-steps"),
        ({"eval_every": 0}, "--eval-every"),
        ({"batch_size": 0}, "--batch-size"),
        ({"units": 0}, "--units"),
        ({"embed_dim": -1}, "--embed-dim"),
        ({"fraction": 0.0}, "--fraction"),
        ({"fraction": 1.5}, "--fraction"),
        ({"client_optimizer": "rmsprop"}, "--client-optimizer"),
        ({"server_optimizer": "lbfgs"}, "--server-optimizer"),
        ({"client_lr": 0.0}, "--client-lr"),
        ({"server_lr": -1.0}, "--server-lr"),
        ({"server_momentum": 1.0}, "--server-momentum"),
        ({"server_momentum": -0.1}, "--server-momentum"),
        ({"server_optimizer": "adam", "server_momentum": 0.9}, "--server-momentum"),
        ({"clip": 0.0}, "--clip"),
        ({"coordinate_clip": 0.0}, "--coordinate-clip"),
        ({"clip": 1.0, "coordinate_clip": 1.0}, "--coordinate-clip"),
        ({"partition": "dirichlet:-1"}, "--partition"),
        ({"partition": "random"}, "--partition"),
        ({"gate_kind": "dynamic"}, "gate_kind"),
        ({"holdout_frac": 1.0}, "holdout_frac"),
    ],
)
def test_invalid_settings_raise_naming_the_flag(overrides: dict, flag: str) -> None:
    with pytest.raises(SimulationConfigError, match=flag):
        SimulationConfig(**overrides)


def test_evaluation_runs_every_kth_round_and_always_the_last() -> None:
    cfg = SimulationConfig(rounds=7, eval_every=3)
    assert [r for r in range(1, 8) if cfg.evaluates(r)] == [3, 6, 7]
    assert all(SimulationConfig(rounds=4).evaluates(r) for r in range(1, 5))


def test_config_is_frozen_and_json_able() -> None:
    cfg = SimulationConfig(clients=4, partition="dirichlet:0.5", clip=2.0)
    with pytest.raises(AttributeError):
        cfg.rounds = 3  # type: ignore[misc]
    d = cfg.to_dict()
    assert d["partition"] == "dirichlet:0.5" and d["clip"] == 2.0
    assert d["gate"]["min_accuracy"] == GateConfig().min_accuracy
    # The defaults are what a Pi does: plain SGD on batches of 32, secure aggregation on.
    default = SimulationConfig()
    assert (default.client_optimizer, default.batch_size, default.secure) == ("sgd", 32, True)


@pytest.mark.parametrize(
    ("clients", "fraction", "expected"), [(10, 1.0, 10), (10, 0.25, 2), (10, 0.01, 1), (3, 0.5, 2)]
)
def test_clients_per_round(clients: int, fraction: float, expected: int) -> None:
    assert SimulationConfig(clients=clients, fraction=fraction).clients_per_round == expected


def test_client_sampling_is_seeded_and_distinct() -> None:
    draws = [sample_clients(100, 10, np.random.default_rng(7)) for _ in range(2)]
    assert draws[0] == draws[1]
    assert len(set(draws[0])) == 10 and all(0 <= i < 100 for i in draws[0])
    assert draws[0] != sample_clients(100, 10, np.random.default_rng(8))


def _fleet(acc: float) -> FleetMetrics:
    return FleetMetrics(acc, acc, acc, n_examples=100, n_devices=2)


def test_gate_tracker_follows_the_deployed_version_across_rounds() -> None:
    gate = _GateTracker(GateConfig(min_accuracy=0.5, tolerance=0.01))
    promoted, reason = gate.judge("r001", _fleet(0.4))
    assert not promoted and "below the threshold" in reason and gate.version is None
    promoted, reason = gate.judge("r002", _fleet(0.6))
    assert promoted and "first deployment" in reason and gate.version == "r002"
    promoted, reason = gate.judge("r003", _fleet(0.58))  # 2 points worse than deployed 0.60
    assert not promoted and "below the deployed" in reason and gate.version == "r002"
    promoted, _ = gate.judge("r004", _fleet(0.595))  # within the 1-point tolerance
    assert promoted and gate.version == "r004"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("localhost:8000", (WorkerAddress("localhost", 8000),)),
        ("10.0.0.5:1, 10.0.0.6:2", (WorkerAddress("10.0.0.5", 1), WorkerAddress("10.0.0.6", 2))),
        ("[::1]:9000", (WorkerAddress("::1", 9000),)),
    ],
)
def test_parse_workers(text: str, expected: tuple[WorkerAddress, ...]) -> None:
    assert parse_workers(text) == expected


@pytest.mark.parametrize(
    "text", ["", "localhost", "host:", ":80", "host:abc", "host:70000", "a:1,a:1", "a:1,,b:2"]
)
def test_parse_workers_rejects(text: str) -> None:
    with pytest.raises(WorkerAddressError):
        parse_workers(text)


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
