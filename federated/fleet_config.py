"""The fleet's settings: the shared round settings plus what only a real fleet has.

Devices and timeouts, the secure-aggregation quantisation (the per-coordinate clip, the cap on a
device's example-count weight, the word size, the threshold) and which artifact is deployed.
Validated when built and printed in every report. TensorFlow-free.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from federated.round_settings import RoundSettings


@dataclass(frozen=True)
class FleetConfig:
    """Round settings; printed in every report."""

    # Completed rounds this fleet database should have: a restart runs only the missing ones.
    rounds: int = 3
    # Instead of ``rounds``: this many completed rounds more than the database holds at start.
    more_rounds: int | None = None
    min_devices: int = 2
    wait_devices_timeout: float = 120.0
    # What each Pi does in a round and how the update is applied, shared with the simulation.
    settings: RoundSettings = field(default_factory=RoundSettings)
    # SecAgg quantisation: per-coordinate clip of a weight *update*, and the cap on a device's
    # example-count weight (bounds what one Pi can contribute).
    clip_bound: float = 1.0
    max_weight: int = 1000
    bit_width: int = 32
    threshold: int | None = None
    # AdvertiseKeys follows local training, so its deadline covers training time.
    train_timeout: float = 600.0
    stage_timeout: float = 60.0
    eval_timeout: float = 300.0
    deploy_timeout: float = 120.0
    deploy_kind: str = "float"
    poll_wait: float = 5.0
    # A device that polled this recently counts as connected.
    live_window: float = 20.0
    # A device that heartbeats while busy (every 2 s) and has said nothing for this long is
    # gone: its round goes on without it at once instead of at the stage's deadline.
    silence_timeout: float = 10.0
    # Issue 22: the evaluate stage also sums the evaluators' confusion counts in a second
    # secure-aggregation session (federated.evaluate_stage); off only to measure its cost.
    fleet_quality: bool = True

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.min_devices < 2:
            raise ValueError("rounds >= 1 and min_devices >= 2 (secure aggregation)")
        if self.more_rounds is not None and self.more_rounds < 0:
            raise ValueError(f"--more-rounds must be >= 0, got {self.more_rounds}")
        if self.deploy_kind not in ("float", "dynamic", "int8"):
            raise ValueError(f"deploy_kind must be float, dynamic or int8, got {self.deploy_kind}")
        for name in (
            "train_timeout",
            "stage_timeout",
            "eval_timeout",
            "deploy_timeout",
            "wait_devices_timeout",
            "poll_wait",
            "live_window",
            "silence_timeout",
        ):
            if not 0 < getattr(self, name) < 86400:
                raise ValueError(f"{name} must be a finite number of seconds > 0")
        if self.live_window <= self.poll_wait:
            # A device inside a long-poll must still count as connected.
            raise ValueError(
                f"--live-window ({self.live_window} s) must exceed --poll-wait ({self.poll_wait} s)"
            )

    def target_rounds(self, completed: int) -> int:
        """The completed-round count to reach, given how many the database holds now."""
        return completed + self.more_rounds if self.more_rounds is not None else self.rounds

    def summary(self) -> str:
        """A few readable lines for the start-up log (``to_dict`` has everything)."""
        s, g = self.settings, self.settings.gate
        rounds = (
            f"{self.more_rounds} more round(s)"
            if self.more_rounds is not None
            else f"{self.rounds} completed round(s) in all"
        )
        steps = f", at most {s.local_steps} steps" if s.local_steps else ""
        return (
            f"{rounds}, {self.min_devices}+ devices per round; local {s.local_epochs} epoch(s)"
            f"{steps} at client lr {s.client_lr} ({s.client_lr_schedule}), server lr "
            f"{s.server_lr}; gate: accuracy >= {g.min_accuracy} (tolerance {g.tolerance}), "
            f"balanced >= {g.min_balanced_accuracy} (tolerance {g.balanced_tolerance}); deploy "
            f"{self.deploy_kind}; clip {self.clip_bound}; timeouts (s): wait "
            f"{self.wait_devices_timeout:g}, train {self.train_timeout:g}, stage "
            f"{self.stage_timeout:g}, eval {self.eval_timeout:g}, deploy {self.deploy_timeout:g}, "
            f"poll {self.poll_wait:g}, live window {self.live_window:g}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for reports."""
        return asdict(self)
