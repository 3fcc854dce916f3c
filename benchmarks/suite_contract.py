"""The contract between ``bench_runner.py`` and each ``bench_<suite>.py`` script.

A suite script is run as ``python benchmarks/bench_<suite>.py --run RUN --out DIR [--quick]
[--data DIR] [--seed N]``, prints a human summary on stdout, and writes its section of
``results.json`` as ``DIR/<suite>.json``. The runner merges the sections, adds the platform
record and the targets, and renders the Markdown table and the charts. Keeping each suite a
process of its own means a suite that imports TensorFlow never shares memory, threads or import
state with one that must not.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Top-level modules a TF-free process must never load (same list as the edge tests).
TF_MODULES = ("tensorflow", "keras", "tensorflow_federated", "tf_keras", "jax")


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


def tf_modules_loaded() -> list[str]:
    """TensorFlow-family modules in this process: the edge path asserts this is empty."""
    import sys

    return sorted(m for m in sys.modules if m.split(".")[0] in TF_MODULES)
