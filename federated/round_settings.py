"""The settings of one federated round, shared by the fleet, the simulation and the CLI.

A fleet and its simulation must mean the same thing by "one round at client rate 0.3", so the
knobs both have live here once, with one default each (each default's reason beside it). What
only one side has stays in that side's config: the fleet's timeouts and secure-aggregation
quantisation (``federated.coordinator.FleetConfig``), the simulation's optimisers, sampling and
TFF aggregator (``federated.simulation.SimulationConfig``). Clipping is of that kind on purpose:
the fleet clips each update coordinate to the quantisation range of its secure aggregation
(``pifed server --clip``), while the simulation chooses among TFF's aggregators (adaptive L2 by
default, ``--clip`` for a fixed L2 bound, ``--coordinate-clip`` for the fleet's rule).

TensorFlow-free: imported by the coordinator, which may run without TensorFlow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from federated.gate import GateConfig, GateError
from federated.lr_schedule import SCHEDULES, scheduled_lr

# Chosen by measurement (benchmarks/experiments/simulation_lr.py, docs/simulation.md): with
# plain SGD on this model, 0.3 trains fastest without the swings of 0.5 and above.
DEFAULT_CLIENT_LR = 0.3
# Server SGD at 1.0 is McMahan et al.'s FedAvg: the new model is the weighted mean of the
# clients' models. 2.0 with few clients adds their moves instead (docs/simulation.md).
DEFAULT_SERVER_LR = 1.0


class RoundSettingsError(ValueError):
    """A round setting is out of range; the message names the flag to fix."""


@dataclass(frozen=True)
class RoundSettings:
    """What every client does in a round and how the server applies it; validated when built."""

    # Local SGD epochs over a client's names per round (FedAvg's E).
    local_epochs: int = 1
    # Cap on a client's SGD batches per round (None: whole local epochs). Fewer local steps
    # limit client drift under skew.
    local_steps: int | None = None
    client_lr: float = DEFAULT_CLIENT_LR
    # "cosine" decays the client rate over the planned rounds (federated/lr_schedule.py).
    client_lr_schedule: str = "constant"
    server_lr: float = DEFAULT_SERVER_LR
    gate: GateConfig = field(default_factory=GateConfig)

    def __post_init__(self) -> None:
        for name, flag in (("local_epochs", "--local-epochs"), ("local_steps", "--local-steps")):
            value = getattr(self, name)
            if value is None and name == "local_steps":
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise RoundSettingsError(f"{flag}: {name} must be an integer >= 1, got {value!r}")
        for name, flag in (("client_lr", "--client-lr"), ("server_lr", "--server-lr")):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 < value < 1e6:
                raise RoundSettingsError(f"{flag} must be a number > 0, got {value!r}")
        if self.client_lr_schedule not in SCHEDULES:
            raise RoundSettingsError(
                f"--client-lr-schedule: {self.client_lr_schedule!r} is not one of "
                f"{', '.join(SCHEDULES)}"
            )
        if not isinstance(self.gate, GateConfig):
            raise RoundSettingsError(f"gate must be a GateConfig, got {type(self.gate).__name__}")

    def client_lr_at(self, round_index: int, rounds: int) -> float:
        """The client rate of round ``round_index`` (1-based) of ``rounds`` planned.

        A caller past its plan (a fleet asked for more rounds) keeps the last round's rate.
        """
        index = min(max(round_index, 1), rounds)
        return scheduled_lr(self.client_lr, self.client_lr_schedule, index, rounds)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, printed in every report."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RoundSettings:
        """The inverse of :meth:`to_dict` (a report's settings, re-run)."""
        try:
            return cls(**{**d, "gate": GateConfig(**d.get("gate", {}))})
        except (TypeError, GateError) as e:
            raise RoundSettingsError(f"invalid round settings {d!r}: {e}") from e
