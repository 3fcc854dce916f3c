"""--rounds counts the fleet database's completed rounds, so a restart runs only the missing ones.

In-process fake devices (tests/fleet_fakes.py) against a real SQLite store.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fleet_fakes import FakePi, fake_cfg, fake_coordinator, pis_running, seeded_store

from edge.tasks import TrainTask
from federated.coordinator import Coordinator
from federated.round_settings import RoundSettings
from federated.store import Store


def _history(store: Store, completed: int) -> None:
    """Rounds a previous coordinator completed (and one it lost to a crash)."""
    base = store.initial_version()
    assert base is not None
    for _ in range(completed):
        r = store.start_round(base.version, [1, 2, 3])
        store.finish_round(r, True, "ok")
    store.start_round(base.version, [1, 2, 3])  # left running: aborted at restart, not counted


def _run(coord: Coordinator, pis: list[FakePi]) -> list[dict]:
    with pis_running(coord, pis):
        return coord.run()


def _fleet(fleet_dir: Path, completed: int, **cfg: object) -> tuple[Store, Coordinator, list]:
    store, devices = seeded_store(fleet_dir, ["a", "b", "c"])
    _history(store, completed)
    coord = fake_coordinator(store, fake_cfg(**cfg))
    lrs: list[float] = []

    def note_lr(pi: FakePi, task: object) -> None:
        if isinstance(task, TrainTask) and pi is pis[0]:
            lrs.append(task.lr)

    pis = [FakePi(coord, d, 0.1, hook=note_lr) for d in devices]
    return store, coord, [pis, lrs]


def test_with_5_completed_and_rounds_7_exactly_2_more_run_on_the_schedule(fleet_dir: Path) -> None:
    settings = RoundSettings(
        client_lr=0.4, client_lr_schedule="cosine", gate=fake_cfg().settings.gate
    )
    store, coord, (pis, lrs) = _fleet(fleet_dir, 5, rounds=7, settings=settings)
    summaries = _run(coord, pis)
    assert [s["ok"] for s in summaries] == [True, True], summaries
    assert store.completed_rounds() == 7
    # Rounds 6 and 7 of 7 on the cosine, not rounds 1 and 2.
    assert lrs == pytest.approx([settings.client_lr_at(6, 7), settings.client_lr_at(7, 7)])
    store.close()


def test_a_database_that_has_its_rounds_runs_none_and_more_rounds_asks_for_more(
    fleet_dir: Path,
) -> None:
    store, coord, (pis, _) = _fleet(fleet_dir, 3, rounds=3)
    assert _run(coord, pis) == []
    store.close()
    store = Store(fleet_dir / "fleet.db")
    coord = fake_coordinator(store, fake_cfg(more_rounds=1))
    pis = [FakePi(coord, d, 0.1) for d in store.devices()]
    assert [s["ok"] for s in _run(coord, pis)] == [True]
    assert store.completed_rounds() == 4
    store.close()
