"""Shared fixtures: the real names data (from ../shared, never copied) and one real trained run.

Two lanes. ``pytest`` runs everything (what CI runs). ``pytest -m "not slow"`` is the fast lane:
tests that start TensorFlow, TFF or real processes carry the ``slow`` mark and are left out, and
in that lane importing TensorFlow or starting a process fails the test that does it, so a test
that needs either and lacks the mark is caught the first time the fast lane runs.
"""

from __future__ import annotations

import importlib.abc
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from edge import TF_MODULES

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


class SlowOnly(RuntimeError):
    """A fast-lane test started TensorFlow or a process: it needs ``@pytest.mark.slow``."""


class _BlockHeavyImports(importlib.abc.MetaPathFinder):
    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> None:
        if name.split(".")[0] in TF_MODULES:
            raise SlowOnly(f"the fast lane imported {name}: mark the test @pytest.mark.slow")
        return None


def _fast_lane(config: pytest.Config) -> bool:
    return str(config.getoption("markexpr", "") or "").replace(" ", "") == "notslow"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """In the fast lane, a module marked slow as a whole is not even imported."""
    if _fast_lane(config) and collection_path.suffix == ".py":
        head = collection_path.read_text(encoding="utf-8", errors="replace")
        if "\npytestmark = pytest.mark.slow" in head:
            return True
    return None


def pytest_configure(config: pytest.Config) -> None:
    """In the fast lane, TensorFlow cannot be imported and no process can be started."""
    if not _fast_lane(config):
        return
    import numpy.testing  # noqa: F401  (its import runs lscpu once: not a test's process)

    sys.meta_path.insert(0, _BlockHeavyImports())

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise SlowOnly(f"the fast lane started a process {args[:1]}: mark the test slow")

    subprocess.Popen.__init__ = refuse  # type: ignore[method-assign]


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    """A folder another user can reach (pytest's own tmp folder is the owner's alone)."""
    d = Path(tempfile.mkdtemp(prefix="pifed-ro-"))
    d.chmod(0o755)
    yield d
    d.chmod(0o755)
    shutil.rmtree(d)
