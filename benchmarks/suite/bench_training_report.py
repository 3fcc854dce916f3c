"""The training suite's part of the report: its target, its Markdown section and its chart.

Reads only the ``training`` section of results.json. Stdlib only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.suite.charts import Chart, save
from benchmarks.suite.tables import num, table
from benchmarks.suite.targets import Target, get

TARGETS = (
    Target(
        "tflite_step_vs_keras",
        "training",
        "TFLite train step no slower than Keras train_on_batch",
        "Keras train_on_batch p50 / TFLite train step p50 (1 thread)",
        ">=",
        1.0,
        lambda s: get(s, "step", "keras_step_p50_ms") / get(s, "step", "tflite_step_p50_ms"),
    ),
)


def _row(trainer: str, threads: str, d: dict[str, Any], step: str, cpu: str) -> list[str]:
    """One table row: ``d``'s step p50/p99 (keys ``{step}p50_ms``...) and ``{cpu}cpu_ms``."""
    times = (d[f"{step}p50_ms"], d[f"{step}p99_ms"], d.get(f"{cpu}cpu_ms"))
    return [trainer, threads, *(num(v, ".2f") for v in times)]


def _step_rows(st: dict[str, Any]) -> list[list[str]]:
    rows = [_row("Keras train_on_batch", "TF default", st, "keras_step_", "keras_")]
    for t, f in st["tflite_by_threads"].items():
        rows.append(_row("TFLite train signature", t, f, "", ""))
    if "numpy_step_p50_ms" in st:
        trainer = "numpy trainer (the fallback), same batches"
        rows.append(_row(trainer, "numpy default", st, "numpy_step_", "numpy_"))
    same = st.get("same_threads") or {}
    if "keras_step_p50_ms" in same:
        trainer = "Keras train_on_batch, TF pinned to 1 thread"
        rows.append(_row(trainer, "1", same, "keras_step_", "keras_"))
        rows.append(_row("TFLite train signature, beside it", "1", same, "tflite_step_", "tflite_"))
    return rows


def section(s: dict[str, Any]) -> str:
    """The ``### training`` section: step times by trainer and threads, then one local epoch."""
    st, ep = s["step"], s["local_epoch"]
    same = st.get("same_threads") or {}
    text = f"### training\n\nOne step at batch {st['batch']} on the same weights:\n\n"
    text += table(
        ["trainer", "threads", "p50 ms", "p99 ms", "CPU ms (all threads)"], _step_rows(st)
    )
    text += (
        f"\nKeras (default threads) / TFLite (1 thread) step: "
        f"**{st['keras_over_tflite_step']:.2f}x**"
    )
    if "keras_over_tflite_cpu" in st:
        text += f"; CPU time per step, Keras / TFLite: {st['keras_over_tflite_cpu']:.2f}x"
    if "keras_over_tflite_step" in same:
        text += f"; both at 1 thread: **{same['keras_over_tflite_step']:.2f}x**"
    if "numpy_over_tflite_step" in st:
        text += f"; numpy trainer / TFLite (1 thread) step: {st['numpy_over_tflite_step']:.2f}x"
    elif "error" in same:
        text += f"; the 1-thread comparison failed ({same['error']})"
    text += (
        ". "
        f"One local epoch on device {ep['device']} of a {ep['devices']}-device {ep['scheme']} "
        f"split ({ep['names']} names{', truncated (quick)' if ep.get('share_truncated') else ''}"
        f", {ep['steps']} steps): TFLite {ep['tflite_s']:.2f} s, Keras {ep['keras_s']:.2f} s "
        f"(**{ep['keras_over_tflite']:.2f}x**).\n"
    )
    return text


def training_chart(plt: Any, s: dict[str, Any], path: Path) -> None:
    """Step p50 per trainer and thread count, and one local epoch, Keras against TFLite."""
    st, ep = s["step"], s["local_epoch"]
    labels = ["Keras\n(TF default)"] + [f"TFLite\n{t} thr" for t in st["tflite_by_threads"]]
    vals = [st["keras_step_p50_ms"]] + [f["p50_ms"] for f in st["tflite_by_threads"].values()]
    colors = ["tab:orange"] + ["tab:blue"] * (len(labels) - 1)
    same = st.get("same_threads") or {}
    if "keras_step_p50_ms" in same:
        labels += ["Keras\n1 thr*", "TFLite\n1 thr*"]
        vals += [same["keras_step_p50_ms"], same["tflite_step_p50_ms"]]
        colors += ["tab:orange", "tab:blue"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.bar(labels, vals, color=colors)
    a.set_ylabel(f"train step p50, ms (batch {st['batch']})")
    a.tick_params(axis="x", labelsize=8)
    if "keras_step_p50_ms" in same:
        a.set_xlabel("* both in a process with TensorFlow pinned to 1 thread", fontsize=8)
    b.bar(["Keras", "TFLite"], [ep["keras_s"], ep["tflite_s"]], color=["tab:orange", "tab:blue"])
    b.set_ylabel(f"one local epoch, s ({ep['names']} names)")
    fig.suptitle("training: same model, same batches")
    save(plt, fig, path)


def charts(s: dict[str, Any]) -> list[Chart]:
    """training.png."""
    return [("training.png", lambda plt, p: training_chart(plt, s, p))]
