"""The settings of one simulation run: ``SimulationConfig``, its error and its named constants.

A run is only reproducible and comparable with a fleet if every setting is written down once,
checked when it is built, and printed in its report. The round settings a fleet and its
simulation share (local epochs and steps, client and server rates, schedule, gate) are one
``federated.round_settings.RoundSettings``, composed here exactly as ``FleetConfig`` composes
it; this module holds only what the simulation alone has: sampling, optimisers, TFF's
aggregator choice, the data split and the model size.

TensorFlow-free: ``pifed --help`` imports it on a Pi.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from federated.round_settings import RoundSettings
from model.partition import PartitionScheme

OPTIMIZERS = ("sgd", "adam")
EVAL_KINDS = ("float", "int8")
RUN_CENTRALIZED = "centralized"
RUN_PLAIN = "federated-plain"
RUN_SECURE = "federated-secure"
RUN_NAMES = (RUN_CENTRALIZED, RUN_PLAIN, RUN_SECURE)

# The keys of a report's ``config`` in the order reports have always printed them: the round
# settings sit flat among the simulation's own fields, so older metrics.json files still read
# (and compare equal, as benchmarks/simulation_targets.py does to reuse a finished run).
REPORT_KEYS = (
    "clients",
    "fraction",
    "rounds",
    "local_epochs",
    "local_steps",
    "batch_size",
    "client_optimizer",
    "client_lr",
    "client_lr_schedule",
    "server_optimizer",
    "server_lr",
    "server_momentum",
    "partition",
    "secure",
    "clip",
    "coordinate_clip",
    "init_model",
    "units",
    "embed_dim",
    "seed",
    "test_frac",
    "holdout_frac",
    "eval_every",
    "gate",
    "gate_kind",
)


class SimulationConfigError(ValueError):
    """A simulation setting is out of range; the message names the flag to fix."""


@dataclass(frozen=True)
class SimulationConfig:
    """Every setting of a simulation run; validated when built and saved in every report."""

    clients: int = 10
    # Fraction of the clients sampled each round (at least one client is always sampled).
    fraction: float = 1.0
    rounds: int = 10
    # What each client does in a round and how the server applies it, shared with the fleet.
    settings: RoundSettings = field(default_factory=RoundSettings)
    # A Pi trains on fixed batches of 32 (train.tflite); keep 32 to simulate that.
    batch_size: int = 32
    # Plain SGD is what train.tflite applies on a Pi.
    client_optimizer: str = "sgd"
    # Server SGD at settings.server_lr 1.0 is McMahan et al.'s FedAvg (the weighted mean).
    server_optimizer: str = "sgd"
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
    # The artifact whose on-device metrics the gate judges (the one a Pi deploys).
    gate_kind: str = "int8"

    def __post_init__(self) -> None:
        if not isinstance(self.settings, RoundSettings):
            raise SimulationConfigError(
                f"settings must be a RoundSettings, got {type(self.settings).__name__}"
            )
        ints = {
            "clients": (self.clients, "--clients"),
            "rounds": (self.rounds, "--rounds"),
            "batch_size": (self.batch_size, "--batch-size"),
            "units": (self.units, "--units"),
            "embed_dim": (self.embed_dim, "--embed-dim"),
            "eval_every": (self.eval_every, "--eval-every"),
        }
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
        """Plain JSON-able form for reports: the round settings flat among the rest.

        The keys and their order are :data:`REPORT_KEYS`, what reports printed before the round
        settings were shared with the fleet.
        """
        own = asdict(self)
        flat = {**own.pop("settings"), **own}
        return {key: flat[key] for key in REPORT_KEYS}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SimulationConfig:
        """The inverse of :meth:`to_dict`: a config from a report's flat ``config`` (or part).

        Missing keys take their defaults. A bad round setting raises ``RoundSettingsError``, a
        bad simulation setting or an unknown key :class:`SimulationConfigError`.
        """
        settings_keys = {f.name for f in fields(RoundSettings)}
        own_keys = {f.name for f in fields(cls)} - {"settings"}
        unknown = sorted(set(d) - settings_keys - own_keys)
        if unknown:
            raise SimulationConfigError(f"unknown simulation settings {unknown}")
        settings = RoundSettings.from_dict({k: v for k, v in d.items() if k in settings_keys})
        return cls(settings=settings, **{k: v for k, v in d.items() if k in own_keys})
