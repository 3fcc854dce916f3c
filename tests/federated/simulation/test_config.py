"""SimulationConfig (with the round settings it composes), client sampling and --init-model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from federated.gate import GateConfig
from federated.round_settings import RoundSettings, RoundSettingsError
from federated.simulation.config import REPORT_KEYS, SimulationConfig, SimulationConfigError


@pytest.mark.parametrize(
    ("overrides", "flag"),
    [
        ({"clients": 0}, "--clients"),
        ({"rounds": 0}, "--rounds"),
        ({"eval_every": 0}, "--eval-every"),
        ({"batch_size": 0}, "--batch-size"),
        ({"units": 0}, "--units"),
        ({"embed_dim": -1}, "--embed-dim"),
        ({"fraction": 0.0}, "--fraction"),
        ({"fraction": 1.5}, "--fraction"),
        ({"client_optimizer": "rmsprop"}, "--client-optimizer"),
        ({"server_optimizer": "lbfgs"}, "--server-optimizer"),
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


@pytest.mark.parametrize(
    ("overrides", "flag"),
    [
        ({"local_epochs": 0}, "--local-epochs"),
        ({"local_steps": 0}, "--local-steps"),
        ({"client_lr": 0.0}, "--client-lr"),
        ({"server_lr": -1.0}, "--server-lr"),
        ({"client_lr_schedule": "step"}, "--client-lr-schedule"),
    ],
)
def test_invalid_round_settings_raise_naming_the_flag(overrides: dict, flag: str) -> None:
    """The settings shared with the fleet are checked by RoundSettings, built or read back."""
    with pytest.raises(RoundSettingsError, match=flag):
        SimulationConfig(settings=RoundSettings(**overrides))
    with pytest.raises(RoundSettingsError, match=flag):
        SimulationConfig.from_dict(overrides)


def test_settings_must_be_round_settings() -> None:
    with pytest.raises(SimulationConfigError, match="RoundSettings"):
        SimulationConfig(settings={"client_lr": 0.1})  # type: ignore[arg-type]


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
    json.dumps(d)
    # The defaults are what a Pi does: plain SGD on batches of 32, secure aggregation on.
    default = SimulationConfig()
    assert (default.client_optimizer, default.batch_size, default.secure) == ("sgd", 32, True)


@pytest.mark.parametrize(
    ("clients", "fraction", "expected"), [(10, 1.0, 10), (10, 0.25, 2), (10, 0.01, 1), (3, 0.5, 2)]
)
def test_clients_per_round(clients: int, fraction: float, expected: int) -> None:
    assert SimulationConfig(clients=clients, fraction=fraction).clients_per_round == expected


def test_report_form_is_flat_as_reports_always_were_and_reads_back() -> None:
    """Reports print the round settings among the rest (older metrics.json files still compare
    equal); ``from_dict`` reads that form back."""
    cfg = SimulationConfig(
        clients=3,
        settings=RoundSettings(
            local_steps=5,
            client_lr=0.1,
            client_lr_schedule="cosine",
            gate=GateConfig(min_accuracy=0.05, tolerance=0.01),
        ),
        coordinate_clip=1.0,
    )
    d = cfg.to_dict()
    assert tuple(d) == REPORT_KEYS and "settings" not in d
    assert (d["local_steps"], d["client_lr"], d["client_lr_schedule"]) == (5, 0.1, "cosine")
    assert (d["gate"]["min_accuracy"], d["gate"]["tolerance"]) == (0.05, 0.01)
    assert SimulationConfig.from_dict(json.loads(json.dumps(d))) == cfg
    assert SimulationConfig.from_dict({}) == SimulationConfig()
    with pytest.raises(SimulationConfigError, match="unknown simulation settings"):
        SimulationConfig.from_dict({"client_rate": 0.1})


def test_the_round_defaults_are_the_fleets() -> None:
    assert SimulationConfig().settings == RoundSettings()
    assert (RoundSettings().client_lr, RoundSettings().server_lr) == (0.3, 1.0)


@pytest.mark.slow
def test_importing_the_package_and_its_tf_free_modules_imports_no_tensorflow() -> None:
    """``pifed --help`` imports the simulation's config on a Pi, where TensorFlow is absent."""
    code = (
        "import sys\n"
        "import federated.simulation, federated.simulation.config\n"
        "import federated.simulation.evaluation, federated.simulation.run\n"
        "import federated.simulation.report, federated.simulation.workers\n"
        "import federated.simulation.backend\n"
        "heavy = ('tensorflow', 'tensorflow_federated', 'keras', 'jax', 'matplotlib')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=root
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
