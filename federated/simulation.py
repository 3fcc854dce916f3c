"""The TFF simulation of a pifed fleet: rounds, on-device evaluation, the deployment gate.

What a Pi owner wants to know before touching hardware (how many rounds, which local epochs,
how much skew, what secure aggregation costs) is only worth knowing if the simulation tells the
truth about the fleet, so every round is judged the way the fleet judges it:

1. the round's global model is exported to the TFLite artifacts a Pi runs (float and int8,
   builtins only, ``model.export``);
2. every simulated device evaluates them on its own held-out names through the edge runtime
   (``edge.runtime.Classifier``, ``edge.evaluate.evaluate_names``), and only those metrics are
   aggregated, weighted by examples (``federated.gate.aggregate_device_metrics``);
3. the deployment gate (``federated.gate.decide``) says whether the fleet would have promoted
   that version, against the version it had deployed so far.

The global, name-disjoint test split is evaluated through the same artifacts. ``--compare``
adds a centralized reference trained on the union of the devices' training names, with the
same model, initial weights, optimiser, learning rate, batch size and total epochs, evaluated
the same way.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.evaluate import evaluate_names
from edge.runtime import Classifier
from federated.gate import FleetMetrics, GateConfig, aggregate_device_metrics, decide
from federated.lr_schedule import SCHEDULES, scheduled_lr
from model.config import ModelConfig
from model.dataset import NamesDataset
from model.encoding import Vocab
from model.partition import PartitionScheme

if TYPE_CHECKING:  # sim_data imports TensorFlow; this module stays importable without it
    from federated.sim_data import SimulationData

OPTIMIZERS = ("sgd", "adam")
EVAL_KINDS = ("float", "int8")
RUN_CENTRALIZED = "centralized"
RUN_PLAIN = "federated-plain"
RUN_SECURE = "federated-secure"

# Default learning rates, chosen by measurement (benchmarks/simulation_lr.py, docs/simulation.md).
DEFAULT_CLIENT_LR = 0.3
DEFAULT_SERVER_LR = 1.0


class SimulationConfigError(ValueError):
    """A simulation setting is out of range; the message names the flag to fix."""


@dataclass(frozen=True)
class SimulationConfig:
    """Every setting of a simulation run; validated when built and saved in every report."""

    clients: int = 10
    # Fraction of the clients sampled each round (at least one client is always sampled).
    fraction: float = 1.0
    rounds: int = 10
    local_epochs: int = 1
    # Cap on a client's batches per round (None: all of its local epochs). Fewer local steps
    # limit client drift under skew; the fleet has the same cap (pifed server --local-steps).
    local_steps: int | None = None
    # A Pi trains on fixed batches of 32 (train.tflite); keep 32 to simulate that.
    batch_size: int = 32
    # Plain SGD is what train.tflite applies on a Pi.
    client_optimizer: str = "sgd"
    client_lr: float = DEFAULT_CLIENT_LR
    # "cosine" decays the client rate over the rounds (federated/lr_schedule.py); the
    # centralized reference follows the same schedule round by round.
    client_lr_schedule: str = "constant"
    # Server SGD at 1.0 is McMahan et al.'s FedAvg: the new model is the weighted mean.
    server_optimizer: str = "sgd"
    server_lr: float = DEFAULT_SERVER_LR
    # Server SGD momentum (FedAvgM, Hsu et al. 2019); 0 is plain FedAvg, what the fleet applies.
    server_momentum: float = 0.0
    partition: str = "iid"
    secure: bool = True
    # Fixed L2 clip of client updates under secure aggregation; None: TFF's adaptive defaults.
    clip: float | None = None
    # Per-coordinate clip of each update at +-B with no L2 clip or zeroing: the fleet's SecAgg.
    coordinate_clip: float | None = None
    # Start from this model folder's vocabulary and weights (e.g. a fleet's init-model) instead
    # of a fresh seeded model: a simulation and a fleet then begin at the same point.
    init_model: str | None = None
    units: int = 128
    embed_dim: int = 64
    seed: int = 0
    test_frac: float = 0.2
    holdout_frac: float = 0.2
    # Export and evaluate on-device every K rounds (and always the last round); rounds in
    # between train only and are not recorded or gated. 1 (every round) is what the fleet does;
    # a long benchmark run uses more to save the ~5 s evaluation of each round.
    eval_every: int = 1
    gate: GateConfig = field(default_factory=GateConfig)
    # The artifact whose on-device metrics the gate judges (the one a Pi deploys).
    gate_kind: str = "int8"

    def __post_init__(self) -> None:
        ints = {
            "clients": (self.clients, "--clients"),
            "rounds": (self.rounds, "--rounds"),
            "local_epochs": (self.local_epochs, "--local-epochs"),
            "batch_size": (self.batch_size, "--batch-size"),
            "units": (self.units, "--units"),
            "embed_dim": (self.embed_dim, "--embed-dim"),
            "eval_every": (self.eval_every, "--eval-every"),
        }
        if self.local_steps is not None:
            ints["local_steps"] = (self.local_steps, "--local-steps")
        for name, (value, flag) in ints.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SimulationConfigError(
                    f"{flag}: {name} must be an integer >= 1, got {value!r}"
                )
        if not 0.0 < self.fraction <= 1.0:
            raise SimulationConfigError(f"--fraction must be in (0, 1], got {self.fraction}")
        for name, flag in (
            ("client_optimizer", "--client-optimizer"),
            ("server_optimizer", "--server-optimizer"),
        ):
            if getattr(self, name) not in OPTIMIZERS:
                raise SimulationConfigError(
                    f"{flag}: {getattr(self, name)!r} is not one of {', '.join(OPTIMIZERS)}"
                )
        if self.client_lr_schedule not in SCHEDULES:
            raise SimulationConfigError(
                f"--client-lr-schedule: {self.client_lr_schedule!r} is not one of "
                f"{', '.join(SCHEDULES)}"
            )
        for name, flag in (("client_lr", "--client-lr"), ("server_lr", "--server-lr")):
            if not getattr(self, name) > 0:
                raise SimulationConfigError(f"{flag} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.server_momentum < 1.0:
            raise SimulationConfigError(
                f"--server-momentum must be in [0, 1), got {self.server_momentum}"
            )
        if self.server_momentum and self.server_optimizer != "sgd":
            raise SimulationConfigError(
                "--server-momentum applies to --server-optimizer sgd only "
                f"(adam keeps its own moments), got {self.server_optimizer!r}"
            )
        if self.clip is not None and not self.clip > 0:
            raise SimulationConfigError(f"--clip must be > 0, got {self.clip}")
        if self.coordinate_clip is not None and not self.coordinate_clip > 0:
            raise SimulationConfigError(
                f"--coordinate-clip must be > 0, got {self.coordinate_clip}"
            )
        if self.clip is not None and self.coordinate_clip is not None:
            raise SimulationConfigError("use one of --clip (L2) and --coordinate-clip, not both")
        try:
            PartitionScheme.parse(self.partition)
        except ValueError as e:
            raise SimulationConfigError(f"--partition: {e}") from e
        for name in ("test_frac", "holdout_frac"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise SimulationConfigError(f"{name} must be in (0, 1), got {getattr(self, name)}")
        if self.gate_kind not in EVAL_KINDS:
            raise SimulationConfigError(
                f"gate_kind must be one of {EVAL_KINDS}, got {self.gate_kind!r}"
            )

    @property
    def clients_per_round(self) -> int:
        """How many clients each round samples: round(fraction * clients), at least 1."""
        return max(1, round(self.fraction * self.clients))

    def evaluates(self, rnd: int) -> bool:
        """Whether round ``rnd`` (1-based) is exported, evaluated on-device and gated."""
        return rnd % self.eval_every == 0 or rnd == self.rounds

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form for reports."""
        return asdict(self)


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


class _GateTracker:
    """The fleet's deployed version across rounds, as the coordinator would track it."""

    def __init__(self, cfg: GateConfig) -> None:
        self.cfg = cfg
        self.deployed: FleetMetrics | None = None
        self.version: str | None = None

    def judge(self, version: str, candidate: FleetMetrics) -> tuple[bool, str]:
        decision = decide(self.cfg, candidate, self.deployed)
        if decision.promote:
            self.deployed, self.version = candidate, version
        return decision.promote, decision.reason


def _record(
    run: str,
    rnd: int,
    version: str,
    sampled: int,
    train: dict[str, float] | None,
    ev: Evaluation,
    cfg: SimulationConfig,
    gate: _GateTracker | None,
    train_seconds: float,
    eval_seconds: float,
    aggregator: dict[str, float] | None = None,
) -> RoundRecord:
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
    """FedAvg for ``cfg.rounds`` rounds; needs an installed execution backend (sim_workers)."""
    from federated.sim_data import (
        build_model,
        client_dataset,
        simulation_model_config,
        start_weights,
    )
    from federated.sim_tff import (
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

    name = RUN_SECURE if secure else RUN_PLAIN
    start = time.perf_counter()
    mcfg = simulation_model_config(data, cfg.units, cfg.embed_dim)
    max_weight = max(c.num_train for c in data.clients) * cfg.local_epochs
    if cfg.local_steps is not None:
        max_weight = min(max_weight, cfg.local_steps * cfg.batch_size)
    process = build_fedavg(
        mcfg,
        build_optimizer(cfg.client_optimizer, cfg.client_lr),
        build_optimizer(cfg.server_optimizer, cfg.server_lr, cfg.server_momentum),
        model_aggregator(secure, cfg.clip, max_weight, cfg.coordinate_clip),
    )
    state = with_weights(process.initialize(), start_weights(data, mcfg, cfg.seed))
    calibration = data.train_ids
    rng = np.random.default_rng(cfg.seed)
    gate = _GateTracker(cfg.gate)
    records: list[RoundRecord] = []
    for rnd in range(1, cfg.rounds + 1):
        sampled = sample_clients(len(data.clients), cfg.clients_per_round, rng)
        datasets = [
            client_dataset(
                data.clients[i],
                cfg.local_epochs,
                cfg.batch_size,
                cfg.seed * 100_003 + rnd,
                cfg.local_steps,
            )
            for i in sampled
        ]
        if cfg.client_lr_schedule != "constant":
            lr = scheduled_lr(cfg.client_lr, cfg.client_lr_schedule, rnd, cfg.rounds)
            state = with_client_lr(process, state, lr)
        t0 = time.perf_counter()
        state, metrics = run_round(process, state, datasets)
        t1 = time.perf_counter()
        if not cfg.evaluates(rnd):
            continue
        model = build_model(mcfg, state_weights(state))  # fresh: see build_model
        version = f"r{rnd:03d}"
        ev = evaluate_candidate(model, mcfg, data, calibration, version, workdir)
        rec = _record(
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


def run_centralized(
    data: SimulationData,
    cfg: SimulationConfig,
    workdir: str | os.PathLike[str],
    on_round: RoundCallback | None = None,
) -> RunResult:
    """The reference: the same model, start, optimiser, batch and total epochs, on all names.

    With ``local_steps`` a round trains on as many examples as a federated round does (that
    many batches per sampled client), drawn at random from all names, so the totals match.
    """
    import tensorflow as tf

    from federated.sim_data import build_model, keras_loss, simulation_model_config, start_weights

    start = time.perf_counter()
    mcfg = simulation_model_config(data, cfg.units, cfg.embed_dim)
    model = build_model(mcfg, start_weights(data, mcfg, cfg.seed))
    opt = (
        tf.keras.optimizers.SGD(cfg.client_lr)
        if cfg.client_optimizer == "sgd"
        else tf.keras.optimizers.Adam(cfg.client_lr)
    )
    model.compile(optimizer=opt, loss=keras_loss(), metrics=["accuracy"])
    x, y = data.train_ids, data.train_labels
    tf.keras.utils.set_random_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    epochs, per_round = cfg.local_epochs, None
    if cfg.local_steps is not None:
        # What a sampled client trains on in a round, on average, times the clients sampled.
        mean_client = cfg.local_epochs * len(y) / len(data.clients)
        per_client = min(cfg.local_steps * cfg.batch_size, mean_client)
        epochs, per_round = 1, min(len(y), round(per_client * cfg.clients_per_round))
    records: list[RoundRecord] = []
    for rnd in range(1, cfg.rounds + 1):
        model.optimizer.learning_rate.assign(
            scheduled_lr(cfg.client_lr, cfg.client_lr_schedule, rnd, cfg.rounds)
        )
        t0 = time.perf_counter()
        # Shuffle here, not with fit(shuffle=True): under a global seed every fit call draws
        # the same permutation, so epoch after epoch ran the same batch order, and the weights
        # each round ended on were far worse than the running training accuracy (0.54 against
        # 0.68 test accuracy after 2 epochs at lr 0.3).
        size = len(y) if per_round is None else per_round
        order = np.concatenate(
            [rng.choice(len(y), size=size, replace=False) for _ in range(epochs)]
        )
        fit = model.fit(x[order], y[order], batch_size=cfg.batch_size, shuffle=False, verbose=0)
        t1 = time.perf_counter()
        if not cfg.evaluates(rnd):
            continue
        train = {
            "loss": float(fit.history["loss"][-1]),
            "accuracy": float(fit.history["accuracy"][-1]),
        }
        version = f"c{rnd:03d}"
        ev = evaluate_candidate(model, mcfg, data, x, version, workdir)
        rec = _record(
            RUN_CENTRALIZED,
            rnd,
            version,
            0,
            train,
            ev,
            cfg,
            None,
            t1 - t0,
            time.perf_counter() - t1,
        )
        records.append(rec)
        if on_round:
            on_round(rec)
    weights = [np.asarray(v.numpy()) for v in model.trainable_variables]
    return RunResult(RUN_CENTRALIZED, records, weights, time.perf_counter() - start)


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

    The TFF worker is started and stopped inside (``federated.sim_workers``): it is gone when
    this returns or raises, including on ``KeyboardInterrupt``.
    """
    from federated.sim_data import build_model, prepare_data, simulation_model_config
    from federated.sim_workers import execution_backend
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
    plan = [RUN_CENTRALIZED, RUN_PLAIN, RUN_SECURE] if compare else [primary]
    if run_names is not None:
        unknown = set(run_names) - {RUN_CENTRALIZED, RUN_PLAIN, RUN_SECURE}
        if unknown or primary not in run_names:
            raise SimulationConfigError(
                f"run_names {list(run_names)} must be among {RUN_CENTRALIZED}, {RUN_PLAIN}, "
                f"{RUN_SECURE} and include the primary run {primary}"
            )
        plan = [n for n in (RUN_CENTRALIZED, RUN_PLAIN, RUN_SECURE) if n in run_names]
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
        _remove_tree(scratch)
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


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
