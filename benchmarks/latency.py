"""Single-name latency: TFLite (float, dynamic, int8) against Keras eager, in one run.

Usage:
    uv run python benchmarks/latency.py --run runs/baseline [--calls 300] [--threads 1]

Prints p50/p99 per variant and the Keras-eager / TFLite ratio of medians. The ratio is the
figure to trust: this machine is noisy, so only side-by-side measurements are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def timed(fn: object, calls: int, warmup: int = 20) -> np.ndarray:
    """Per-call wall times in microseconds."""
    assert callable(fn)
    for _ in range(warmup):
        fn()
    out = np.empty(calls)
    for i in range(calls):
        t = time.perf_counter()
        fn()
        out[i] = (time.perf_counter() - t) * 1e6
    return out


def main() -> int:
    """Measure each variant on the same names, print a table, write latency.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="a `pifed train --out` directory")
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import tensorflow as tf

    from edge.runtime import Classifier

    model_dir = Path(args.run) / "model"
    clfs = {
        k: Classifier.from_dir(model_dir, k, num_threads=args.threads)
        for k in ("float", "dynamic", "int8")
    }
    ids = clfs["float"].vocab.encode(["Nakamura"])
    keras = tf.keras.models.load_model(model_dir / "keras_model.keras")
    x = tf.constant(ids)
    results = {"keras_eager": timed(lambda: keras(x, training=False), args.calls)}
    for kind, clf in clfs.items():
        results[kind] = timed(lambda clf=clf: clf.logits(ids), args.calls)
    base = float(np.median(results["keras_eager"]))
    table = {}
    print(f"single-name latency, {args.calls} calls, TFLite threads={args.threads}")
    print(f"{'variant':<12} {'p50 µs':>9} {'p99 µs':>9} {'eager/this':>11}")
    for name, t in results.items():
        p50, p99 = float(np.median(t)), float(np.percentile(t, 99))
        table[name] = {"p50_us": p50, "p99_us": p99, "keras_eager_over_this": base / p50}
        print(f"{name:<12} {p50:>9.1f} {p99:>9.1f} {base / p50:>10.1f}x")
    print("target: float TFLite >= 50x faster than Keras eager")
    (Path(args.run) / "latency.json").write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
