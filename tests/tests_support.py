"""Helpers shared by test modules (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import subprocess
import sys


def run_pifed(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `python -m pifed ARGS` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "pifed", *args], capture_output=True, text=True, timeout=timeout
    )
