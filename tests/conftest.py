"""Shared fixtures: the real names data (from ../shared, never copied) and one real trained run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY_MODEL = ["--epochs", "3", "--units", "32", "--embed-dim", "16"]


def pifed_cmd(*args: str) -> list[str]:
    """Run the installed CLI through this interpreter (no reliance on PATH)."""
    return [sys.executable, "-m", "pifed", *args]


sys.path.insert(0, str(Path(__file__).parent))  # tests_support
sys.path.insert(0, str(Path(__file__).parent / "integration"))  # fleet_harness


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The names data set: $PIFED_DATA, else ../shared/data/names beside the checkout."""
    path = Path(os.environ.get("PIFED_DATA", ROOT.parent / "shared" / "data" / "names"))
    if not (path / "Russian.txt").is_file():
        pytest.fail(f"names data not found at {path}; set PIFED_DATA=DIR (see README)")
    return path


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """One small model trained and exported by the real `pifed train` command."""
    out = tmp_path_factory.mktemp("run")
    proc = subprocess.run(
        pifed_cmd("train", "--data", str(data_dir), "--out", str(out), *TINY_MODEL),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out
