"""Run benchmark suites and write results.json, results.md and PNG charts (``pifed bench``).

    pifed bench --out DIR [--suite NAME ...] [--run RUN] [--quick]
    uv run python -m benchmarks.suite.runner --out DIR ...   # the same, from the project folder

Suites (``all``, the default, runs every one): ``pifed.commands.bench.SUITES``, the one list
(inference, training, footprint, edge, round, scaling). Each is
``benchmarks.suite.bench_<suite>``, run as its own process with this interpreter; every figure
is a ratio of things measured side by side inside that one process.

``--run`` is a ``pifed train --out`` directory. Without it a model is trained into DIR/run
first (reused if already there) with the default ``pifed train`` settings -- the shipped model
size, GRU 128 units per direction, embedding 64, up to 20 epochs, about 5 minutes on 2 cores;
``--quick`` trains a tiny one instead (2 epochs, 32 units, embedding 16). Training needs
TensorFlow, so on a Pi pass ``--run`` with a copied run directory.

This runner and the edge suite import no TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.suite.contract import module_command, module_env
from benchmarks.suite.platform_info import platform_record
from benchmarks.suite.report import evaluate_targets, render, target_lines
from pifed.commands.bench import SUITES

QUICK_TRAIN_ARGS = ("--epochs", "2", "--units", "32", "--embed-dim", "16")
RESULTS_FORMAT = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A problem with the arguments or the run directory; exit 2 with the message."""


def build_parser() -> argparse.ArgumentParser:
    """The runner's arguments; ``pifed bench`` passes its own straight through."""
    p = argparse.ArgumentParser(
        description=(__doc__ or "").strip().splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    p.add_argument("--out", type=Path, required=True, help="directory for the results")
    p.add_argument(
        "--suite",
        action="append",
        choices=(*SUITES, "all"),
        help="suite to run (repeatable; default: all)",
    )
    p.add_argument("--run", type=Path, help="a `pifed train --out` directory to benchmark")
    p.add_argument("--quick", action="store_true", help="few repetitions and a tiny model (tests)")
    p.add_argument("--data", help="names data folder (default: $PIFED_DATA, then the cache)")
    p.add_argument("--seed", type=int, default=0, help="seed for training, sampling, ordering")
    return p


def selected_suites(requested: list[str] | None) -> list[str]:
    """The suites to run, in the canonical order, each once."""
    if not requested or "all" in requested:
        return list(SUITES)
    return [s for s in SUITES if s in requested]


def _tensorflow_installed() -> bool:
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):  # an import blocker, or a broken install
        return False


def _check_run(run: Path) -> None:
    if not (run / "model" / "manifest.json").is_file():
        raise UsageError(
            f"{run} is not a `pifed train --out` directory: {run}/model/manifest.json is "
            "missing; pass --run with a trained run (copy the whole directory), or omit --run "
            "to train one (needs TensorFlow)"
        )
    if not (run / "test_names").is_dir():
        raise UsageError(
            f"{run}/test_names is missing: the suites measure accuracy on the run's held-out "
            "names; copy the whole run directory, not only model/"
        )


def prepare_run(args: argparse.Namespace) -> dict[str, Any]:
    """Use --run, or reuse / train DIR/run; returns what results.json says about the model."""
    if args.run is not None:
        run: Path = args.run
        _check_run(run)
        trained: list[str] | None = None
    else:
        run = args.out / "run"
        trained = None
        if not (run / "model" / "manifest.json").is_file():
            if not _tensorflow_installed():
                raise UsageError(
                    "no --run given and TensorFlow is not installed, so no model can be trained "
                    "here (a Pi has the edge set only): copy a `pifed train --out` directory "
                    "and pass it with --run"
                )
            trained = [
                "--out",
                str(run),
                "--seed",
                str(args.seed),
                *(["--data", args.data] if args.data else []),
                *(QUICK_TRAIN_ARGS if args.quick else ()),
            ]
            print(f"== training a model into {run}: pifed train {' '.join(trained)}", flush=True)
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "pifed", "train", *trained])
            if proc.returncode != 0:
                raise RuntimeError(f"pifed train failed with exit {proc.returncode}")
            print(f"   trained in {time.perf_counter() - t0:.0f} s", flush=True)
        else:
            print(f"== reusing the model in {run}", flush=True)
        _check_run(run)
    manifest = json.loads((run / "model" / "manifest.json").read_text())
    cfg = manifest["model_config"]
    n_params = sum(math.prod(w["shape"]) for w in manifest.get("weights", []))
    summary = (
        f"GRU {cfg.get('units')} units{' x2 (bidirectional)' if cfg.get('bidirectional') else ''}"
        f", embedding {cfg.get('embed_dim')}, {n_params:,} parameters, "
        f"{len(manifest['languages'])} languages"
    )
    return {
        "path": str(run.resolve()),
        "trained_by_bench": trained is not None,
        "train_args": trained,
        "model_config": cfg,
        "parameters": n_params,
        "summary": summary,
    }


def run_suite(
    suite: str, run: Path, args: argparse.Namespace, sections: Path, logs: Path
) -> dict[str, Any]:
    """One suite module in its own process: stdout echoed and logged, stderr logged."""
    cmd = module_command(
        f"bench_{suite}",
        "--run",
        str(run),
        "--out",
        str(sections),
        "--seed",
        str(args.seed),
        *(["--quick"] if args.quick else []),
        *(["--data", args.data] if args.data else []),
    )
    log = logs / f"{suite}.log"
    env = module_env()
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    (sections / f"{suite}.json").unlink(missing_ok=True)
    print(f"== {suite}", flush=True)
    t0 = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                print(f"   {line}", end="", flush=True)
                err.write(line)
            proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    seconds = time.perf_counter() - t0
    path = sections / f"{suite}.json"
    if proc.returncode != 0 or not path.is_file():
        tail = log.read_text()[-2000:]
        print(f"   {suite} FAILED (exit {proc.returncode}); log {log}:\n{tail}", flush=True)
        return {"error": f"exit {proc.returncode}", "log": str(log), "seconds": seconds}
    section: dict[str, Any] = json.loads(path.read_text())
    section["seconds"] = seconds
    print(f"   ({suite}: {seconds:.0f} s)", flush=True)
    return section


def main(argv: list[str] | None = None) -> int:
    """Prepare the run, run each suite, merge, evaluate targets, render; 1 if a suite failed."""
    args = build_parser().parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    sections, logs = out / "suites", out / "logs"
    sections.mkdir(exist_ok=True)
    logs.mkdir(exist_ok=True)
    suites = selected_suites(args.suite)
    platform = platform_record()
    try:
        run_info = prepare_run(args)
    except UsageError as e:
        print(f"pifed bench: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    t0 = time.perf_counter()
    results: dict[str, Any] = {
        "format": RESULTS_FORMAT,
        "platform": platform,
        "quick": bool(args.quick),
        "seed": args.seed,
        "run": run_info,
        "suites_requested": suites,
        "suites": {},
    }
    for suite in suites:
        results["suites"][suite] = run_suite(suite, Path(run_info["path"]), args, sections, logs)
    results["seconds"] = time.perf_counter() - t0
    results["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    results["targets"] = evaluate_targets(results["suites"])
    render(out, results)
    print("== targets (ratios measured side by side in this run)")
    for line in target_lines(results["targets"]):
        print(f"   {line}")
    extra = f" and {len(results['charts'])} charts" if results["charts"] else ""
    print(f"wrote {out}/results.json, results.md{extra}")
    failed = [s for s, v in results["suites"].items() if "error" in v]
    if failed:
        print(f"failed suites: {', '.join(failed)} (see {logs})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
