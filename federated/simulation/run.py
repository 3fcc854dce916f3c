"""The federated runs of a simulation and ``simulate``, which plans, runs and exports them.

FedAvg is McMahan et al., "Communication-Efficient Learning of Deep Networks from
Decentralized Data" (AISTATS 2017): each round samples ``fraction * clients`` devices (seeded,
:func:`sample_clients`), each trains ``local_epochs`` (at most ``local_steps`` batches) from
the global model, and the server applies the example-weighted mean update (``process``). A
secure run aggregates through the simulated secure sums of Bonawitz et al. (CCS 2017). Every
evaluated round is judged as the fleet would judge it (``evaluation``).

``simulate`` owns the run's resources: the TFF worker (``workers``, ``backend``) and the
scratch folder of per-round exports are gone when it returns or raises.

TensorFlow-free at import (``federated.simulation`` re-exports this module): TensorFlow and
TFF are imported inside the functions that run them.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from federated.lr_schedule import scheduled_lr
from federated.simulation.config import (
    RUN_CENTRALIZED,
    RUN_NAMES,
    RUN_PLAIN,
    RUN_SECURE,
    SimulationConfig,
    SimulationConfigError,
)
from federated.simulation.evaluation import (
    GateTracker,
    RoundCallback,
    RoundRecord,
    RunResult,
    evaluate_candidate,
    round_record,
)
from model.dataset import NamesDataset
from model.encoding import Vocab

if TYPE_CHECKING:  # data imports TensorFlow; this module stays importable without it
    from federated.simulation.data import SimulationData


def sample_clients(n_clients: int, k: int, rng: np.random.Generator) -> list[int]:
    """``k`` distinct client indices, sorted (seeded, so every run samples the same clients)."""
    return sorted(int(i) for i in rng.choice(n_clients, size=k, replace=False))


def run_federated(
    data: SimulationData,
    cfg: SimulationConfig,
    secure: bool,
    workdir: str | os.PathLike[str],
    on_round: RoundCallback | None = None,
) -> RunResult:
    """FedAvg for ``cfg.rounds`` rounds; needs an installed execution backend (``backend``)."""
    from federated.simulation.data import (
        build_model,
        client_dataset,
        simulation_model_config,
        start_weights,
    )
    from federated.simulation.process import (
        aggregator_metrics,
        build_fedavg,
        build_optimizer,
        model_aggregator,
        run_round,
        state_weights,
        train_metrics,
        with_client_lr,
        with_weights,
    )

    settings = cfg.settings
    name = RUN_SECURE if secure else RUN_PLAIN
    start = time.perf_counter()
    mcfg = simulation_model_config(data, cfg.units, cfg.embed_dim)
    max_weight = max(c.num_train for c in data.clients) * settings.local_epochs
    if settings.local_steps is not None:
        max_weight = min(max_weight, settings.local_steps * cfg.batch_size)
    process = build_fedavg(
        mcfg,
        build_optimizer(cfg.client_optimizer, settings.client_lr),
        build_optimizer(cfg.server_optimizer, settings.server_lr, cfg.server_momentum),
        model_aggregator(secure, cfg.clip, max_weight, cfg.coordinate_clip),
    )
    state = with_weights(process.initialize(), start_weights(data, mcfg, cfg.seed))
    calibration = data.train_ids
    rng = np.random.default_rng(cfg.seed)
    gate = GateTracker(settings.gate)
    records: list[RoundRecord] = []
    for rnd in range(1, cfg.rounds + 1):
        sampled = sample_clients(len(data.clients), cfg.clients_per_round, rng)
        datasets = [
            client_dataset(
                data.clients[i],
                settings.local_epochs,
                cfg.batch_size,
                cfg.seed * 100_003 + rnd,
                settings.local_steps,
            )
            for i in sampled
        ]
        if settings.client_lr_schedule != "constant":
            lr = scheduled_lr(settings.client_lr, settings.client_lr_schedule, rnd, cfg.rounds)
            state = with_client_lr(process, state, lr)
        t0 = time.perf_counter()
        state, metrics = run_round(process, state, datasets)
        t1 = time.perf_counter()
        if not cfg.evaluates(rnd):
            continue
        model = build_model(mcfg, state_weights(state))  # fresh: see build_model
        version = f"r{rnd:03d}"
        ev = evaluate_candidate(model, mcfg, data, calibration, version, workdir)
        rec = round_record(
            name,
            rnd,
            version,
            len(sampled),
            train_metrics(metrics),
            ev,
            cfg,
            gate,
            t1 - t0,
            time.perf_counter() - t1,
            aggregator_metrics(metrics),
        )
        records.append(rec)
        if on_round:
            on_round(rec)
    return RunResult(name, records, state_weights(state), time.perf_counter() - start)


@dataclass
class SimulationResult:
    """All runs of one ``pifed simulate`` and where the final model went."""

    config: SimulationConfig
    data_summary: dict[str, Any]
    model_config: dict[str, Any]
    backend: dict[str, Any]
    runs: list[RunResult]
    primary: str
    final_model: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def load_start(cfg: SimulationConfig, ds: NamesDataset) -> tuple[Vocab, list[np.ndarray]]:
    """The vocabulary and weights of ``cfg.init_model``, checked against the data and config."""
    from edge.trainer import OnDeviceTrainer
    from model.manifest import ModelManifest

    folder = Path(str(cfg.init_model))
    try:
        manifest = ModelManifest.load(folder)
    except (OSError, ValueError) as e:
        raise SimulationConfigError(f"--init-model {folder}: {e}") from e
    if tuple(manifest.languages) != tuple(ds.languages):
        raise SimulationConfigError(
            f"--init-model {folder} was made for languages {list(manifest.languages)}, but the "
            f"data has {list(ds.languages)}; use a model made for this data"
        )
    for key, flag in (("units", "--units"), ("embed_dim", "--embed-dim")):
        if manifest.model_config.get(key) != getattr(cfg, key):
            raise SimulationConfigError(
                f"--init-model {folder} has {key}={manifest.model_config.get(key)} but "
                f"{flag} is {getattr(cfg, key)}; pass {flag} {manifest.model_config.get(key)}"
            )
    if "train" not in manifest.artifacts:
        raise SimulationConfigError(
            f"--init-model {folder} has no train.tflite to read its weights from"
        )
    return manifest.vocab, OnDeviceTrainer(folder).weights()


def _plan(cfg: SimulationConfig, compare: bool, run_names: Sequence[str] | None) -> list[str]:
    """The runs to do, in order: the primary one, all three with ``compare``, or as named."""
    primary = RUN_SECURE if cfg.secure else RUN_PLAIN
    if run_names is None:
        return list(RUN_NAMES) if compare else [primary]
    unknown = set(run_names) - set(RUN_NAMES)
    if unknown or primary not in run_names:
        raise SimulationConfigError(
            f"run_names {list(run_names)} must be among {RUN_CENTRALIZED}, {RUN_PLAIN}, "
            f"{RUN_SECURE} and include the primary run {primary}"
        )
    return [n for n in RUN_NAMES if n in run_names]


def simulate(
    ds: NamesDataset,
    cfg: SimulationConfig,
    out_dir: str | os.PathLike[str],
    compare: bool = False,
    workers: Sequence[Any] = (),
    on_round: RoundCallback | None = None,
    on_stage: Callable[[str], None] | None = None,
    run_names: Sequence[str] | None = None,
) -> SimulationResult:
    """Run the simulation (or all three runs with ``compare``), export the final model.

    ``run_names`` picks the runs explicitly (e.g. centralized and secure only, for a benchmark
    that needs no plain run); it must include the primary run, whose model is exported.

    The TFF worker is started and stopped inside (``federated.simulation.backend``): it is
    gone when this returns or raises, including on ``KeyboardInterrupt``.
    """
    from federated.simulation.backend import execution_backend
    from federated.simulation.centralized import run_centralized
    from federated.simulation.data import build_model, prepare_data, simulation_model_config
    from model.export import export_artifacts

    start = time.perf_counter()
    init = load_start(cfg, ds) if cfg.init_model else None  # before anything is written
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stage = on_stage or (lambda _msg: None)
    data = prepare_data(
        ds,
        cfg.clients,
        cfg.partition,
        cfg.seed,
        cfg.test_frac,
        cfg.holdout_frac,
        vocab=init[0] if init else None,
    )
    if init:
        data = replace(data, start_weights=tuple(init[1]))
    mcfg = simulation_model_config(data, cfg.units, cfg.embed_dim)
    primary = RUN_SECURE if cfg.secure else RUN_PLAIN
    plan = _plan(cfg, compare, run_names)
    runs: list[RunResult] = []
    scratch = out / "rounds-tmp"
    scratch.mkdir(exist_ok=True)
    try:
        with execution_backend(workers, log_path=out / "logs" / "worker.log") as backend:
            for name in plan:
                stage(name)
                if name == RUN_CENTRALIZED:
                    runs.append(run_centralized(data, cfg, scratch, on_round))
                else:
                    runs.append(run_federated(data, cfg, name == RUN_SECURE, scratch, on_round))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    stage("export")
    final = next(r for r in runs if r.name == primary)
    model = build_model(mcfg, final.weights)
    model_dir = out / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    model.save(model_dir / "keras_model.keras")
    version = f"sim-{primary}-r{cfg.rounds:03d}"
    manifest = export_artifacts(
        model, mcfg, data.vocab, data.languages, data.train_ids, model_dir, version=version
    )
    return SimulationResult(
        config=cfg,
        data_summary=data.summary(),
        model_config=mcfg.to_dict(),
        backend=asdict(backend),
        runs=runs,
        primary=primary,
        final_model={
            "dir": "model",
            "run": primary,
            "version": version,
            "artifacts": manifest.artifacts,
            "deployed_version": final.final.deployed_version,
        },
        seconds=time.perf_counter() - start,
    )
