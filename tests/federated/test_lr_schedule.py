"""The client learning-rate schedule the simulation and the fleet share."""

from __future__ import annotations

import itertools
import math

import pytest

from federated.lr_schedule import ScheduleError, scheduled_lr


def test_constant_is_the_base_rate_every_round() -> None:
    assert [scheduled_lr(0.3, "constant", r, 5) for r in range(1, 6)] == [0.3] * 5


def test_cosine_starts_at_the_base_and_decays_to_near_zero_without_reaching_it() -> None:
    rates = [scheduled_lr(0.3, "cosine", r, 40) for r in range(1, 41)]
    assert rates[0] == pytest.approx(0.3)
    assert all(a > b > 0 for a, b in itertools.pairwise(rates))
    assert rates[20] == pytest.approx(0.15)  # half-way (round 21 of 40)
    assert rates[-1] == pytest.approx(0.3 * (1 + math.cos(math.pi * 39 / 40)) / 2)
    assert rates[-1] < 0.001


@pytest.mark.parametrize(
    ("schedule", "index", "rounds", "message"),
    [
        ("linear", 1, 3, "unknown learning-rate schedule 'linear'"),
        ("cosine", 0, 3, "round 0 is outside the planned rounds 1..3"),
        ("cosine", 4, 3, "round 4 is outside"),
    ],
)
def test_bad_schedules_and_rounds_are_named(
    schedule: str, index: int, rounds: int, message: str
) -> None:
    with pytest.raises(ScheduleError, match=message):
        scheduled_lr(0.3, schedule, index, rounds)


def test_the_simulation_and_the_fleet_refuse_an_unknown_schedule() -> None:
    from federated.round_settings import RoundSettings, RoundSettingsError
    from federated.simulation.config import SimulationConfig

    # The simulation reads its schedule into the RoundSettings it shares with the fleet.
    with pytest.raises(RoundSettingsError, match="--client-lr-schedule: 'step'"):
        SimulationConfig.from_dict({"client_lr_schedule": "step"})
    with pytest.raises(RoundSettingsError, match="--client-lr-schedule: 'step'"):
        RoundSettings(client_lr_schedule="step")
