"""``pifed bench``: measure the edge claims, as ratios taken side by side in one run.

The measurements are the ``benchmarks.suite`` package of the project's ``benchmarks/`` folder
(one ``bench_<suite>`` module per suite, plus ``runner``); this command finds that folder and
runs ``python -m benchmarks.suite.runner`` with this interpreter and the folder's parent on
``PYTHONPATH``. ``benchmarks/`` is not part of the installed packages, so the folder is looked
for in ``$PIFED_BENCHMARKS``, beside the ``pifed`` package (a source checkout or an editable
install), then in the current directory (a Pi that installed with ``pip install ".[edge]"`` from
its checkout and runs from there). Stdlib only: ``pifed bench --suite edge`` runs on a Pi.

``SUITES`` is the one list of suites: the runner imports it from here (this module cannot
import the benchmarks, which are found only at run time).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from pifed import flags

BENCH_ENV = "PIFED_BENCHMARKS"
RUNNER = "suite/runner.py"
RUNNER_MODULE = "benchmarks.suite.runner"
#: Each is benchmarks/suite/bench_<name>.py with its report in bench_<name>_report.py.
SUITES = ("inference", "training", "footprint", "edge", "round", "scaling", "coordinator")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``pifed bench``."""
    p = sub.add_parser(
        "bench",
        help="benchmarks: TFLite vs TensorFlow latency, training, footprint (ratios, one run)",
        description="Run benchmark suites and write results.json, results.md and PNG charts. "
        "Suites: inference (TFLite float/dynamic/int8 vs Keras eager and predict), training "
        "(TFLite train step vs Keras train_on_batch, one local epoch), footprint (edge client "
        "vs TensorFlow client: peak RSS, import time; installed sizes), edge (the TFLite-only "
        "subset a Pi runs without TensorFlow), round and scaling (secure aggregation), "
        "coordinator (without TensorFlow vs with the converter: peak RSS, export, start, "
        "install size, fleet time). Every "
        "target is a ratio of two things measured side by side in the same run.",
    )
    p.add_argument(
        "--suite",
        action="append",
        choices=(*SUITES, "all"),
        metavar="NAME",
        help=f"suite to run, repeatable: {', '.join(SUITES)} or all (default: all)",
    )
    flags.add_out(p, "directory for results.json, results.md and the charts")
    p.add_argument(
        "--run",
        metavar="DIR",
        help="a `pifed train --out` directory to benchmark (default: train one into OUT/run "
        "with the default `pifed train` size, or reuse it; needs TensorFlow)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="few repetitions and a tiny model if one is trained: for tests, not figures",
    )
    flags.add_data(p)
    flags.add_seed(p)


def benchmarks_dir() -> Path:
    """The project's ``benchmarks/`` folder; FileNotFoundError (exit 2) says how to point at it."""
    candidates = []
    if os.environ.get(BENCH_ENV):
        candidates.append(Path(os.environ[BENCH_ENV]))
    candidates.append(Path(__file__).resolve().parents[2] / "benchmarks")
    candidates.append(Path.cwd() / "benchmarks")
    for c in candidates:
        if (c / RUNNER).is_file():
            return c
    raise FileNotFoundError(
        f"benchmarks/{RUNNER} not found (looked in {', '.join(str(c) for c in candidates)}): "
        "the benchmark scripts live in the pifed project folder, not in the installed package; "
        f"run `pifed bench` from the project folder, or set {BENCH_ENV}=/path/to/pifed/benchmarks"
    )


def runner_command(args: argparse.Namespace) -> list[str]:
    """The runner invocation for these arguments (same interpreter, flags passed through)."""
    # -P: not the working directory's own `benchmarks`, only the one found (on PYTHONPATH).
    cmd = [sys.executable, "-P", "-m", RUNNER_MODULE, "--out", str(args.out)]
    for suite in args.suite or []:
        cmd += ["--suite", suite]
    if args.run:
        cmd += ["--run", str(args.run)]
    if args.quick:
        cmd.append("--quick")
    if args.data:
        cmd += ["--data", str(args.data)]
    cmd += ["--seed", str(args.seed)]
    return cmd


def runner_env() -> dict[str, str]:
    """This environment with the folder holding ``benchmarks/`` first on ``PYTHONPATH``."""
    env = dict(os.environ)
    project = str(benchmarks_dir().parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (project, env.get("PYTHONPATH")) if p)
    return env


def run(args: argparse.Namespace) -> int:
    """Run the benchmark runner as a child process and return its exit status."""
    return subprocess.run(runner_command(args), env=runner_env()).returncode
