"""Fixtures of the coordinator tests that run in-process fake Pis (tests/fleet_fakes.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fleet_fakes import make_fleet_dir


@pytest.fixture()
def fleet_dir(tmp_path: Path) -> Path:
    """A fleet folder with the fakes' template model in it (its store comes from
    ``seeded_store``)."""
    return make_fleet_dir(tmp_path)
