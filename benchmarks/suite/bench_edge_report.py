"""The edge suite's part of the report: its Markdown section and its charts (no targets).

The edge suite's figures are the TFLite halves of the inference, training and footprint
suites, so its section and charts reuse theirs; every ratio it has is within-machine, and none
is a target. Stdlib only.
"""

from __future__ import annotations

from typing import Any

from benchmarks.suite.bench_footprint_report import footprint_chart, footprint_md
from benchmarks.suite.bench_inference_report import inference_md, latency_chart, threads_chart
from benchmarks.suite.charts import Chart
from benchmarks.suite.tables import num, table
from benchmarks.suite.targets import Target

TARGETS: tuple[Target, ...] = ()


def section(s: dict[str, Any]) -> str:
    """The ``### edge`` section: inference, the TFLite train step and epoch, the footprint."""
    text = f"### edge (TensorFlow-free path, runtime {s['runtime']})\n\n"
    text += inference_md(s["inference"], "edge: inference", "####")
    st, ep = s["training"]["step"], s["training"]["local_epoch"]
    text += "\n#### edge: training\n\n" + table(
        ["threads", "step p50 ms", "step p99 ms", "CPU ms (all threads)"],
        [
            [t, num(f["p50_ms"], ".2f"), num(f["p99_ms"], ".2f"), num(f.get("cpu_ms"), ".2f")]
            for t, f in st["tflite_by_threads"].items()
        ],
    )
    if "tflite_s" in ep:
        text += f"\nOne local epoch ({ep['names']} names): {ep['tflite_s']:.2f} s.\n"
    else:
        text += f"\nLocal epoch: {ep['skipped']}.\n"
    text += "\n" + footprint_md(s["footprint"], "edge: footprint", "####")
    return text


def charts(s: dict[str, Any]) -> list[Chart]:
    """edge_inference.png, edge_threads.png and edge_footprint.png."""
    inf = s["inference"]
    return [
        ("edge_inference.png", lambda plt, p: latency_chart(plt, inf, p, "edge")),
        ("edge_threads.png", lambda plt, p: threads_chart(plt, inf, p, "edge")),
        ("edge_footprint.png", lambda plt, p: footprint_chart(plt, s["footprint"], p)),
    ]
