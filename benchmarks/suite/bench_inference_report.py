"""The inference suite's part of the report: its target, its Markdown section and its charts.

Reads only the ``inference`` section of results.json (the edge suite's report reuses the
section and the charts for its TFLite-only figures). Stdlib only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.suite.charts import Chart, save
from benchmarks.suite.tables import num, table
from benchmarks.suite.targets import Target, get

TFLITE_VARIANTS = ("float", "dynamic", "int8")

TARGETS = (
    Target(
        "int8_latency_vs_keras_eager",
        "inference",
        "int8 single-name latency at least 50x faster than Keras eager",
        "Keras eager p50 / int8 TFLite p50 (1 thread)",
        ">=",
        50.0,
        lambda s: (
            get(s, "variants", "keras_eager", "single_p50_us")
            / get(s, "variants", "int8", "single_p50_us")
        ),
    ),
)


def inference_md(s: dict[str, Any], title: str, level: str = "###") -> str:
    """Latency, throughput, size and accuracy per variant, then TFLite by thread count."""
    keras = "keras_eager" in s["variants"]
    rows = []
    for name, v in s["variants"].items():
        row = [
            name,
            v["runtime"],
            num(v["single_p50_us"]),
            num(v["single_p99_us"]),
            num(v["batch256_names_per_s"], ",.0f"),
            num(v["bytes"] / 1024, ",.0f"),
            num(v["accuracy"], ".4f"),
            num(v["balanced_accuracy"], ".4f"),
        ]
        if keras:
            row += [
                num(v.get("single_speedup_vs_keras_eager"), ".1f"),
                num(v.get("single_speedup_vs_keras_predict"), ".1f"),
            ]
        rows.append(row)
    text = f"{level} {title}\n\n{s['n_test']} test names; TFLite at {s['headline_threads']} thread"
    text += ", Keras at TensorFlow's default threads" if keras else ""
    text += "; batch 256 for throughput.\n\n"
    head = ["variant", "runtime", "p50 µs", "p99 µs", "names/s @256", "KB", "accuracy"]
    head += ["balanced acc."]
    head += ["x vs Keras eager", "x vs Keras predict"] if keras else []
    text += table(head, rows)
    text += (
        f"\nint8 / float single-name p50: {s['int8_over_float_single_p50']:.2f}; "
        f"int8 / float file size: {s['int8_over_float_bytes']:.2f}.\n"
    )
    trows = []
    for kind in TFLITE_VARIANTS:
        for t, f in s["variants"][kind]["by_threads"].items():
            trows.append(
                [
                    kind,
                    t,
                    num(f["single_p50_us"]),
                    num(f["single_p99_us"]),
                    num(f["batch256_names_per_s"], ",.0f"),
                    num(f.get("single_speedup_vs_1_thread"), ".2f"),
                ]
            )
    text += "\nTFLite by thread count:\n\n" + table(
        ["variant", "threads", "p50 µs", "p99 µs", "names/s @256", "p50 speed-up vs 1 thread"],
        trows,
    )
    return text


def section(s: dict[str, Any]) -> str:
    """The ``### inference`` section of results.md."""
    return inference_md(s, "inference")


def latency_chart(plt: Any, s: dict[str, Any], path: Path, title: str) -> None:
    """Single-name p50/p99 and batch-256 throughput per variant, log scales."""
    names = list(s["variants"])
    p50 = [s["variants"][n]["single_p50_us"] for n in names]
    p99 = [s["variants"][n]["single_p99_us"] for n in names]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    y = range(len(names))
    a.barh(y, p50, color="tab:blue", label="p50")
    a.scatter(p99, y, color="black", marker="|", s=200, label="p99", zorder=3)
    a.set_yticks(list(y), names)
    a.set_xscale("log")
    a.set_xlabel("single-name latency, µs (log)")
    a.legend()
    a.invert_yaxis()
    tput = [s["variants"][n]["batch256_names_per_s"] for n in names]
    b.barh(y, tput, color="tab:green")
    b.set_yticks(list(y), names)
    b.set_xscale("log")
    b.set_xlabel("throughput at batch 256, names/s (log)")
    b.invert_yaxis()
    fig.suptitle(title)
    save(plt, fig, path)


def threads_chart(plt: Any, s: dict[str, Any], path: Path, title: str) -> None:
    """Each TFLite variant's p50 and throughput at each thread count."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    threads = [str(t) for t in s["threads"]]
    width = 0.8 / len(TFLITE_VARIANTS)
    for i, kind in enumerate(TFLITE_VARIANTS):
        by = s["variants"][kind]["by_threads"]
        xs = [j + i * width for j in range(len(threads))]
        a.bar(xs, [by[t]["single_p50_us"] for t in threads], width, label=kind)
        b.bar(xs, [by[t]["batch256_names_per_s"] for t in threads], width, label=kind)
    for ax, label in ((a, "single-name p50, µs"), (b, "names/s at batch 256")):
        ax.set_xticks([j + width for j in range(len(threads))], [f"{t} thr" for t in threads])
        ax.set_ylabel(label)
        ax.legend()
    fig.suptitle(title)
    save(plt, fig, path)


def charts(s: dict[str, Any]) -> list[Chart]:
    """inference_latency.png and inference_threads.png."""
    return [
        ("inference_latency.png", lambda plt, p: latency_chart(plt, s, p, "inference")),
        ("inference_threads.png", lambda plt, p: threads_chart(plt, s, p, "TFLite threads")),
    ]
