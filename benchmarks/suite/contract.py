"""The contract between ``runner`` and each ``bench_<suite>`` module, and how they are started.

A suite is run as ``python -m benchmarks.suite.bench_<suite> --run RUN --out DIR [--quick]
[--data DIR] [--seed N]``, prints a human summary on stdout, and writes its section of
``results.json`` as ``DIR/<suite>.json``. The runner merges the sections, adds the platform
record, and ``report`` asks each suite's ``bench_<suite>_report`` for its targets, Markdown and
charts. Keeping each suite a process of its own means a suite that imports TensorFlow never
shares memory, threads or import state with one that must not.

Every child (a suite, the footprint's measured clients, the training suite's one-thread process,
the secagg grid) is started with :func:`module_command` and :func:`module_env`: ``-m`` with the
project folder on ``PYTHONPATH`` (and ``-P``), so ``benchmarks.suite.*`` resolves from any
working directory.
Stdlib and ``edge`` only: the edge suite and a Pi's runner import this.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from edge import TF_MODULES

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: The folder that holds ``benchmarks/``: what ``-m benchmarks.suite...`` needs on the path.
PROJECT = Path(__file__).resolve().parents[2]


def suite_parser(doc: str | None) -> argparse.ArgumentParser:
    """The arguments every suite script takes, so the runner can call them all alike."""
    parser = argparse.ArgumentParser(
        description=(doc or "").strip().splitlines()[0] if doc else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=doc,
    )
    parser.add_argument("--run", type=Path, required=True, help="a `pifed train --out` directory")
    parser.add_argument("--out", type=Path, required=True, help="where to write <suite>.json")
    parser.add_argument("--quick", action="store_true", help="few repetitions (for tests)")
    parser.add_argument("--data", help="names data folder (default: $PIFED_DATA)")
    parser.add_argument("--seed", type=int, default=0, help="seed for sampling and ordering")
    return parser


def _finite(obj: Any) -> Any:
    """JSON has no NaN/inf: turn them into None so results.json stays strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def write_section(out: Path, suite: str, section: dict[str, Any]) -> Path:
    """Write one suite's results as ``OUT/<suite>.json`` (strict JSON) and return the path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{suite}.json"
    path.write_text(json.dumps(_finite(section), indent=2, allow_nan=False) + "\n")
    return path


def module_command(module: str, *args: str) -> list[str]:
    """This interpreter running ``benchmarks.suite.<module>``: how every benchmark child starts.

    ``-P`` keeps the working directory off the path, so the child imports the ``benchmarks``
    that :func:`module_env` names, whatever folder it was started in.
    """
    return [sys.executable, "-P", "-m", f"{__package__}.{module}", *args]


def module_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this one) with the project folder first on ``PYTHONPATH``.

    ``-m`` only puts the working directory on the path; the children must find ``benchmarks``
    wherever the runner was started from.
    """
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT), env.get("PYTHONPATH")) if p)
    return env


def tf_modules_loaded() -> list[str]:
    """TensorFlow-family modules in this process: the edge path asserts this is empty."""
    return sorted(m for m in sys.modules if m.split(".")[0] in TF_MODULES)
