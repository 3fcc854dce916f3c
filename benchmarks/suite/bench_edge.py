"""Edge suite: the figures a Raspberry Pi can produce with the edge set alone (no TensorFlow).

    python -m benchmarks.suite.bench_edge --run RUN --out DIR [--data DIR] [--quick]

The TFLite halves of the other suites, run through the code a Pi runs:
- inference: float, dynamic-range and int8 at 1, 2 and 4 threads (latency p50/p99, batch-256
  throughput, file size, test accuracy) -- ``bench_inference.measure_inference`` without Keras;
- training: the TFLite ``train`` step at the fixed batch, and, when the names data is given
  (``--data`` or ``$PIFED_DATA``), one local epoch on device 0's share of a 2-device split;
- footprint: the edge client process (peak RSS, import time) beside a bare interpreter, and
  the installed size of the edge set against everything installed.

Nothing on this path imports TensorFlow; the suite asserts it at the end, and the tests run it
with TensorFlow import-blocked. Its ratios are within-machine (int8 vs float, threads, client vs
bare Python); compare a Pi's absolute figures with the same suite's figures from another machine.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from benchmarks.suite.bench_footprint import footprint_section
from benchmarks.suite.bench_inference import FULL as FULL_INFERENCE
from benchmarks.suite.bench_inference import QUICK as QUICK_INFERENCE
from benchmarks.suite.bench_inference import measure_inference
from benchmarks.suite.bench_training import (
    HEADLINE_THREADS,
    QUICK_SHARE_NAMES,
    local_share,
    measure_tflite_step,
    tflite_epoch_fn,
)
from benchmarks.suite.contract import suite_parser, tf_modules_loaded, write_section
from edge.runtime import runtime_name
from model.dataset import NoDataConfigured
from model.manifest import ModelManifest


def local_epoch(run: Any, data: str | None, quick: bool, seed: int) -> dict[str, Any]:
    """One TFLite epoch on device 0's share, or why it was skipped (no names data here)."""
    try:
        names, labels = local_share(run, data, seed)
    except (NoDataConfigured, FileNotFoundError) as e:
        return {"skipped": f"no names data: {e}"}
    if quick:
        names, labels = names[:QUICK_SHARE_NAMES], labels[:QUICK_SHARE_NAMES]
    ids = ModelManifest.load(run / "model").vocab.encode(names)
    epoch = tflite_epoch_fn(run, ids, labels, seed)
    times = []
    for _ in range(1 if quick else 3):
        t0 = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t0)
    return {
        "names": len(names),
        "share_truncated": quick,
        "tflite_s": float(np.median(times)),
        "tflite_threads": HEADLINE_THREADS,
        "repeats": len(times),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the TFLite-only measurements; write edge.json; fail if TensorFlow got loaded."""
    args = suite_parser(__doc__).parse_args(argv)
    inference = measure_inference(
        args.run, QUICK_INFERENCE if args.quick else FULL_INFERENCE, args.seed
    )
    step = measure_tflite_step(args.run, args.quick, args.seed)
    epoch = local_epoch(args.run, args.data, args.quick, args.seed)
    footprint = footprint_section(args.run, ("bare_python", "edge"), 1 if args.quick else 3)
    loaded = tf_modules_loaded()
    if loaded:
        raise SystemExit(f"edge suite loaded TensorFlow modules: {loaded}")
    section = {
        "runtime": runtime_name(),
        "training_runtime": runtime_name("training"),
        "tensorflow_imported": False,
        "inference": inference,
        "training": {"step": step, "local_epoch": epoch},
        "footprint": footprint,
    }
    write_section(args.out, "edge", section)
    print(
        f"edge (inference {section['runtime']}, training {section['training_runtime']}, "
        "no TensorFlow loaded)"
    )
    for kind, v in inference["variants"].items():
        print(
            f"  {kind:<8} p50 {v['single_p50_us']:8.1f} µs  p99 {v['single_p99_us']:8.1f} µs  "
            f"{v['batch256_names_per_s']:8.0f} names/s  {v['bytes'] / 1024:6.0f} KB  "
            f"acc {v['accuracy']:.4f}"
        )
    print(f"  int8 / float single-name p50: {inference['int8_over_float_single_p50']:.2f}")
    print(f"  train step p50 {step['tflite_step_p50_ms']:.2f} ms (batch {step['batch']})")
    if "tflite_s" in epoch:
        print(f"  local epoch ({epoch['names']} names): {epoch['tflite_s']:.2f} s")
    else:
        print(f"  local epoch: {epoch['skipped']}")
    c = footprint["clients"]["edge"]
    print(
        f"  edge client peak RSS {c['peak_rss_bytes'] / 2**20:.1f} MB "
        f"({footprint['edge_over_bare_rss']:.1f}x a bare interpreter), import {c['import_s']:.2f} s"
    )
    inst = footprint["installed"]
    print(f"  edge set installed: {inst['edge']['bytes'] / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
