"""Inference suite: TFLite float / dynamic-range / int8 against Keras eager and Keras predict.

    uv run python -m benchmarks.suite.bench_inference --run RUN --out DIR [--quick]

Per variant, in one run and interleaved (see interleaved_timing.py): single-name latency p50 and
p99, throughput at batch 256, file size, and accuracy on the run's test split (RUN/test_names).
TFLite runs through the same ``edge.runtime.Classifier`` a Pi uses, at 1, 2 and 4 threads; Keras
runs with TensorFlow's default threading (all cores). The headline TFLite figures are at 1
thread, which is the conservative comparison: Keras gets every core.

Importing this module does not import TensorFlow: the edge suite reuses ``measure_inference``
without the Keras contestants.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.suite.contract import suite_parser, write_section
from benchmarks.suite.interleaved_timing import Contestant, summary, time_interleaved
from edge.evaluate import evaluate_names, labels_for_model
from edge.runtime import Classifier, runtime_name
from model.dataset import load_names
from model.metrics import METRIC_NAMES

VARIANTS = ("float", "dynamic", "int8")
THREADS = (1, 2, 4)
HEADLINE_THREADS = 1
BATCH = 256


@dataclass(frozen=True)
class InferenceBudget:
    """How many interleaved rounds, and calls per round, each kind of contestant gets.

    Keras calls are 10-100x slower than TFLite ones, so they get smaller blocks; the rounds
    are shared, which is what keeps the comparison side by side.
    """

    single_rounds: int
    tflite_single_block: int
    eager_single_block: int
    predict_single_block: int
    batch_rounds: int
    tflite_batch_block: int
    keras_batch_block: int


FULL = InferenceBudget(15, 100, 8, 4, 8, 3, 2)
QUICK = InferenceBudget(3, 20, 4, 2, 2, 2, 1)


@dataclass
class KerasBaseline:
    """Keras stand-ins for a variant: how to call it on one name and on a batch of 256.

    Built by ``keras_baselines`` (which imports TensorFlow); the TFLite side never needs it.
    """

    name: str
    single: Callable[[], object]
    batch: Callable[[], object]
    path: Path
    metrics: dict[str, Any]
    note: str


def load_test_split(run: Path) -> tuple[list[str], np.ndarray, Classifier]:
    """The run's held-out names with labels in the model's language order."""
    clf = Classifier.from_dir(run / "model", "float", num_threads=HEADLINE_THREADS)
    ds = load_names(run / "test_names")
    return list(ds.names), labels_for_model(ds, clf.languages), clf


def _cycle_rows(ids: np.ndarray) -> Callable[[], np.ndarray]:
    rows = itertools.cycle([ids[i : i + 1] for i in range(len(ids))])
    return lambda: next(rows)


def _cycle_batches(ids: np.ndarray, batch: int) -> Callable[[], np.ndarray]:
    n = max(1, len(ids) // batch)
    if len(ids) < batch:  # tiny test sets: repeat names to fill one batch
        ids = np.resize(ids, (batch, ids.shape[1]))
    batches = itertools.cycle([ids[k * batch : (k + 1) * batch] for k in range(n)])
    return lambda: next(batches)


def _metrics(m: dict[str, Any]) -> dict[str, Any]:
    return {k: m[k] for k in (*METRIC_NAMES, "n")}


def measure_inference(
    run: Path,
    budget: InferenceBudget,
    seed: int,
    keras: list[KerasBaseline] | None = None,
    threads: tuple[int, ...] = THREADS,
) -> dict[str, Any]:
    """Time every TFLite variant at every thread count (and any Keras baselines) side by side.

    Returns the suite's section: per variant the headline figures (TFLite at 1 thread), a
    ``by_threads`` breakdown, size and test accuracy, plus ratios against Keras when given.
    """
    names, labels, _ = load_test_split(run)
    model_dir = run / "model"
    clfs = {
        (kind, t): Classifier.from_dir(model_dir, kind, num_threads=t)
        for kind in VARIANTS
        for t in threads
    }
    ids = clfs[(VARIANTS[0], threads[0])].vocab.encode(names)
    keras = keras or []

    def tflite_single(clf: Classifier) -> Callable[[], object]:
        nxt = _cycle_rows(ids)
        return lambda: clf.logits(nxt())

    def tflite_batch(clf: Classifier) -> Callable[[], object]:
        nxt = _cycle_batches(ids, BATCH)
        return lambda: clf.logits(nxt(), batch=BATCH)

    single = [
        Contestant(f"{k}@{t}", tflite_single(c), budget.tflite_single_block)
        for (k, t), c in clfs.items()
    ]
    single += [
        Contestant(
            b.name,
            b.single,
            budget.eager_single_block if "eager" in b.name else budget.predict_single_block,
        )
        for b in keras
    ]
    single_t = time_interleaved(single, budget.single_rounds, seed)
    batch = [
        Contestant(f"{k}@{t}", tflite_batch(c), budget.tflite_batch_block)
        for (k, t), c in clfs.items()
    ]
    batch += [Contestant(b.name, b.batch, budget.keras_batch_block) for b in keras]
    batch_t = time_interleaved(batch, budget.batch_rounds, seed + 1)

    def figures(key: str) -> dict[str, Any]:
        s = summary(single_t[key])
        b = summary(batch_t[key])
        return {
            "single_p50_us": s["p50_us"],
            "single_p99_us": s["p99_us"],
            "single_calls": s["calls"],
            "batch256_p50_ms": b["p50_us"] / 1e3,
            "batch256_names_per_s": BATCH / (b["p50_us"] / 1e6),
            "batch256_calls": b["calls"],
        }

    variants: dict[str, Any] = {}
    for b in keras:
        fig = figures(b.name)
        variants[b.name] = {
            "runtime": "tensorflow",
            "file": b.path.name,
            "bytes": b.path.stat().st_size,
            **b.metrics,
            **fig,
            "by_threads": {"tf_default": fig},
            "note": b.note,
        }
    for kind in VARIANTS:
        clf = clfs[(kind, HEADLINE_THREADS if HEADLINE_THREADS in threads else threads[0])]
        by_threads = {str(t): figures(f"{kind}@{t}") for t in threads}
        base = by_threads[str(threads[0])]["single_p50_us"]
        for fig in by_threads.values():
            fig["single_speedup_vs_1_thread"] = base / fig["single_p50_us"]
        headline = by_threads[str(HEADLINE_THREADS if HEADLINE_THREADS in threads else threads[0])]
        variants[kind] = {
            "runtime": runtime_name(),
            "file": clf.path.name,
            "bytes": clf.path.stat().st_size,
            **_metrics(evaluate_names(clf, names, labels)),
            **{k: v for k, v in headline.items() if k != "single_speedup_vs_1_thread"},
            "by_threads": by_threads,
        }
        for b in keras:
            kv = variants[b.name]
            variants[kind][f"single_speedup_vs_{b.name}"] = (
                kv["single_p50_us"] / headline["single_p50_us"]
            )
            variants[kind][f"throughput_vs_{b.name}"] = (
                headline["batch256_names_per_s"] / kv["batch256_names_per_s"]
            )
    return {
        "n_test": len(names),
        "batch": BATCH,
        "threads": list(threads),
        "headline_threads": HEADLINE_THREADS,
        "budget": asdict(budget),
        "variants": variants,
        "int8_over_float_single_p50": variants["int8"]["single_p50_us"]
        / variants["float"]["single_p50_us"],
        "int8_over_float_bytes": variants["int8"]["bytes"] / variants["float"]["bytes"],
    }


def keras_baselines(run: Path, names: list[str], labels: np.ndarray) -> list[KerasBaseline]:
    """Keras eager ``model(x)`` and ``model.predict`` on the run's saved Keras model.

    Inputs are converted to tensors up front for eager calls, so Keras is not charged for a
    numpy-to-tensor conversion the TFLite path does not make either.
    """
    import tensorflow as tf

    from model.gru import load_classifier
    from model.metrics import classification_metrics

    path = run / "model" / "keras_model.keras"
    model = load_classifier(path)
    clf = Classifier.from_dir(run / "model", "float")
    ids = clf.vocab.encode(names)
    logits = model.predict(ids, batch_size=1024, verbose=0)
    m = _metrics(classification_metrics(labels, np.argmax(logits, 1), len(clf.languages)))
    singles = [tf.constant(ids[i : i + 1]) for i in range(min(len(ids), 512))]
    next_single = itertools.cycle(singles).__next__
    next_np = _cycle_rows(ids)
    next_batch_np = _cycle_batches(ids, BATCH)
    batches = [tf.constant(next_batch_np()) for _ in range(max(1, min(8, len(ids) // BATCH)))]
    next_batch = itertools.cycle(batches).__next__
    return [
        KerasBaseline(
            "keras_eager",
            lambda: model(next_single(), training=False),
            lambda: model(next_batch(), training=False),
            path,
            m,
            "model(x, training=False) on a prebuilt tensor; TensorFlow default threads",
        ),
        KerasBaseline(
            "keras_predict",
            lambda: model.predict(next_np(), verbose=0),
            lambda: model.predict(next_batch_np(), batch_size=BATCH, verbose=0),
            path,
            m,
            "model.predict(x, verbose=0); TensorFlow default threads",
        ),
    ]


def print_section(section: dict[str, Any]) -> None:
    """The suite's table on stdout, ratios first-class."""
    print(
        f"inference: {section['n_test']} test names; TFLite headline at "
        f"{section['headline_threads']} thread; batch {section['batch']}"
    )
    head = (
        f"{'variant':<14}{'p50 µs':>10}{'p99 µs':>10}{'names/s@256':>13}"
        f"{'KB':>8}{'accuracy':>10}{'vs eager':>10}"
    )
    print(head)
    for name, v in section["variants"].items():
        ratio = v.get("single_speedup_vs_keras_eager")
        print(
            f"{name:<14}{v['single_p50_us']:>10.1f}{v['single_p99_us']:>10.1f}"
            f"{v['batch256_names_per_s']:>13.0f}{v['bytes'] / 1024:>8.0f}"
            f"{v['accuracy']:>10.4f}{'' if ratio is None else f'{ratio:>9.1f}x':>10}"
        )
    for kind in VARIANTS:
        scale = ", ".join(
            f"{t} thr {f['single_p50_us']:.0f} µs / {f['batch256_names_per_s']:.0f} names/s"
            for t, f in section["variants"][kind]["by_threads"].items()
        )
        print(f"  {kind} by threads: {scale}")


def main(argv: list[str] | None = None) -> int:
    """Measure TFLite and Keras side by side; write inference.json."""
    args = suite_parser(__doc__).parse_args(argv)
    budget = QUICK if args.quick else FULL
    names, labels, _ = load_test_split(args.run)
    keras = keras_baselines(args.run, names, labels)
    section = measure_inference(args.run, budget, args.seed, keras)
    write_section(args.out, "inference", section)
    print_section(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
