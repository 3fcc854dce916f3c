"""The benchmark report: targets (met / missed), the Markdown tables and the PNG charts.

    python benchmarks/bench_report.py DIR     # re-render DIR/results.md and charts

Everything here reads ``results.json`` only, so a Pi's results can be re-rendered on another
machine (a Pi with the edge set alone has no matplotlib: its run writes the JSON and Markdown,
and says the charts were skipped). Stdlib only at top level; matplotlib is imported lazily.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TFLITE_VARIANTS = ("float", "dynamic", "int8")


@dataclass(frozen=True)
class Target:
    """One claim of the issue, as a ratio measured side by side in one run."""

    key: str
    suite: str
    claim: str
    ratio_name: str
    op: str  # ">=" or "<="
    threshold: float
    ratio: Callable[[dict[str, Any]], float]


def _get(d: dict[str, Any], *path: str) -> Any:
    for p in path:
        d = d[p]
    return d


TARGETS = (
    Target(
        "int8_latency_vs_keras_eager",
        "inference",
        "int8 single-name latency at least 50x faster than Keras eager",
        "Keras eager p50 / int8 TFLite p50 (1 thread)",
        ">=",
        50.0,
        lambda s: (
            _get(s, "variants", "keras_eager", "single_p50_us")
            / _get(s, "variants", "int8", "single_p50_us")
        ),
    ),
    Target(
        "edge_rss_vs_tensorflow",
        "footprint",
        "edge client peak RSS at most 1/5 of the TensorFlow-based client's",
        "edge client peak RSS / smallest TensorFlow client peak RSS",
        "<=",
        0.2,
        lambda s: float(s["edge_over_tensorflow_rss"]),
    ),
    Target(
        "edge_install_vs_full",
        "footprint",
        "edge dependency set at most 1/10 of the full set's installed size",
        "edge set bytes / whole environment bytes",
        "<=",
        0.1,
        lambda s: float(_get(s, "installed", "edge_over_full_venv")),
    ),
    Target(
        "tflite_step_vs_keras",
        "training",
        "TFLite train step no slower than Keras train_on_batch",
        "Keras train_on_batch p50 / TFLite train step p50 (1 thread)",
        ">=",
        1.0,
        lambda s: _get(s, "step", "keras_step_p50_ms") / _get(s, "step", "tflite_step_p50_ms"),
    ),
)


def evaluate_targets(suites: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target's ratio and whether it is met; ``met`` is None when its suite did not run."""
    out = []
    for t in TARGETS:
        row: dict[str, Any] = {
            "key": t.key,
            "claim": t.claim,
            "ratio_name": t.ratio_name,
            "op": t.op,
            "threshold": t.threshold,
            "suite": t.suite,
            "ratio": None,
            "met": None,
            "status": "not measured",
        }
        section = suites.get(t.suite)
        if isinstance(section, dict) and "error" not in section:
            try:
                ratio = float(t.ratio(section))
            except (KeyError, TypeError, ZeroDivisionError):
                ratio = None
            if ratio is not None:
                met = ratio >= t.threshold if t.op == ">=" else ratio <= t.threshold
                row.update(ratio=ratio, met=met, status="met" if met else "missed")
        out.append(row)
    return out


def target_lines(targets: list[dict[str, Any]]) -> list[str]:
    """One printable line per target: claim, ratio, threshold, met/missed."""
    lines = []
    for t in targets:
        value = "-" if t["ratio"] is None else f"{t['ratio']:.3g}"
        lines.append(
            f"[{t['status'].upper():^12}] {t['claim']}: {t['ratio_name']} = {value} "
            f"(target {t['op']} {t['threshold']:g})"
        )
    return lines


# --- Markdown ------------------------------------------------------------------------------


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _f(x: Any, fmt: str = ".1f") -> str:
    return "-" if x is None else format(x, fmt)


def _mb(x: Any) -> str:
    return "-" if x is None else f"{x / 2**20:.1f}"


def _inference_md(s: dict[str, Any], title: str, level: str = "###") -> str:
    keras = "keras_eager" in s["variants"]
    rows = []
    for name, v in s["variants"].items():
        row = [
            name,
            v["runtime"],
            _f(v["single_p50_us"]),
            _f(v["single_p99_us"]),
            _f(v["batch256_names_per_s"], ",.0f"),
            _f(v["bytes"] / 1024, ",.0f"),
            _f(v["accuracy"], ".4f"),
            _f(v["balanced_accuracy"], ".4f"),
        ]
        if keras:
            row += [
                _f(v.get("single_speedup_vs_keras_eager"), ".1f"),
                _f(v.get("single_speedup_vs_keras_predict"), ".1f"),
            ]
        rows.append(row)
    text = f"{level} {title}\n\n{s['n_test']} test names; TFLite at {s['headline_threads']} thread"
    text += ", Keras at TensorFlow's default threads" if keras else ""
    text += "; batch 256 for throughput.\n\n"
    head = ["variant", "runtime", "p50 µs", "p99 µs", "names/s @256", "KB", "accuracy"]
    head += ["balanced acc."]
    head += ["x vs Keras eager", "x vs Keras predict"] if keras else []
    text += _table(head, rows)
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
                    _f(f["single_p50_us"]),
                    _f(f["single_p99_us"]),
                    _f(f["batch256_names_per_s"], ",.0f"),
                    _f(f.get("single_speedup_vs_1_thread"), ".2f"),
                ]
            )
    text += "\nTFLite by thread count:\n\n" + _table(
        ["variant", "threads", "p50 µs", "p99 µs", "names/s @256", "p50 speed-up vs 1 thread"],
        trows,
    )
    return text


def _training_md(s: dict[str, Any]) -> str:
    st, ep = s["step"], s["local_epoch"]
    rows = [
        [
            "Keras train_on_batch",
            "TF default",
            _f(st["keras_step_p50_ms"], ".2f"),
            _f(st["keras_step_p99_ms"], ".2f"),
            _f(st.get("keras_cpu_ms"), ".2f"),
        ]
    ]
    for t, f in st["tflite_by_threads"].items():
        rows.append(
            [
                "TFLite train signature",
                t,
                _f(f["p50_ms"], ".2f"),
                _f(f["p99_ms"], ".2f"),
                _f(f.get("cpu_ms"), ".2f"),
            ]
        )
    same = st.get("same_threads") or {}
    if "keras_step_p50_ms" in same:
        rows.append(
            [
                "Keras train_on_batch, TF pinned to 1 thread",
                "1",
                _f(same["keras_step_p50_ms"], ".2f"),
                _f(same["keras_step_p99_ms"], ".2f"),
                _f(same.get("keras_cpu_ms"), ".2f"),
            ]
        )
        rows.append(
            [
                "TFLite train signature, beside it",
                "1",
                _f(same["tflite_step_p50_ms"], ".2f"),
                _f(same["tflite_step_p99_ms"], ".2f"),
                _f(same.get("tflite_cpu_ms"), ".2f"),
            ]
        )
    text = f"### training\n\nOne step at batch {st['batch']} on the same weights:\n\n"
    text += _table(["trainer", "threads", "p50 ms", "p99 ms", "CPU ms (all threads)"], rows)
    text += (
        f"\nKeras (default threads) / TFLite (1 thread) step: "
        f"**{st['keras_over_tflite_step']:.2f}x**"
    )
    if "keras_over_tflite_cpu" in st:
        text += f"; CPU time per step, Keras / TFLite: {st['keras_over_tflite_cpu']:.2f}x"
    if "keras_over_tflite_step" in same:
        text += f"; both at 1 thread: **{same['keras_over_tflite_step']:.2f}x**"
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


def _footprint_md(s: dict[str, Any], title: str, level: str = "###") -> str:
    rows = []
    for kind, c in s["clients"].items():
        rows.append(
            [
                kind,
                c["runtime"],
                _mb(c["peak_rss_bytes"]),
                _f(c["import_s"], ".2f"),
                _f(c["work_s"], ".2f"),
                _f(c["wall_s"], ".2f"),
                str(c["tf_modules_loaded"]),
            ]
        )
    text = f"{level} {title}\n\nEach client is a fresh process: load the int8 model and the train "
    text += "artifact, evaluate on the test split, train one step.\n\n"
    text += _table(
        ["client", "runtime", "peak RSS MiB", "import s", "work s", "wall s", "TF modules"], rows
    )
    inst = s["installed"]
    text += "\nInstalled size (RECORD files of installed distributions):\n\n"
    text += _table(
        ["set", "distributions", "MB"],
        [
            [
                "edge (" + ", ".join(inst["edge"]["distributions"]) + ")",
                str(inst["edge"]["count"]),
                _f(inst["edge"]["bytes"] / 1e6),
            ],
            [
                "coordinator (pifed[full] closure)",
                str(inst["coordinator"]["count"]),
                _f(inst["coordinator"]["bytes"] / 1e6),
            ],
            [
                "whole environment",
                str(inst["full_venv"]["count"]),
                _f(inst["full_venv"]["bytes"] / 1e6),
            ],
        ],
    )
    text += f"\nedge / whole environment: **{inst['edge_over_full_venv']:.3f}**"
    if inst.get("edge_over_coordinator") is not None:
        text += f"; edge / coordinator set: {inst['edge_over_coordinator']:.3f}"
    text += "\n"
    return text


def _fleet_md(fleet: dict[str, Any]) -> str:
    if "rounds" not in fleet:
        return f"Fleet round: {fleet.get('reason')}.\n\n"
    keys = (
        "train_s",
        "setup_and_keys_s",
        "mask_upload_s",
        "unmask_aggregate_s",
        "export_s",
        "evaluate_s",
        "deploy_s",
        "total_s",
        "secagg_at_most_s",
    )
    rows = [
        [str(r["round"]), *(_f(r[k], ".2f") for k in keys), _f(r["secagg_at_most_share"], ".1%")]
        for r in fleet["rounds"]
    ]
    head = ["round", "train", "setup+keys", "mask+upload", "unmask+sum", "export", "evaluate"]
    head += ["deploy", "total", "secure agg. at most", "share"]
    text = (
        f"Fleet round, seconds by stage: {fleet['devices']} `pifed edge` processes on loopback, "
        f"GRU-{fleet['units']}, TLS and secure aggregation (train: the slowest device's own "
        "report; setup+keys: the rest of the key-advertisement stage, which also holds each Pi's "
        "download and interpreter start, plus ShareKeys; secure agg. at most: setup+keys + "
        "mask+upload + unmask+sum, an upper bound on what a plain round would not spend "
        "beyond one upload and a sum):\n\n" + _table(head, rows)
    )
    if not fleet["available"]:
        text += f"\n{fleet['reason']}\n"
    return text + "\n"


def _rows(items: list[dict[str, Any]], columns: list[tuple[str, str | None]]) -> list[list[str]]:
    """Table cells: each column a key and a number format (None: the value as text)."""
    return [[str(it[k]) if fmt is None else _f(it[k], fmt) for k, fmt in columns] for it in items]


def _simulation_md(sim: dict[str, Any]) -> str:
    if not sim.get("available"):
        return f"\nSimulation: {sim.get('reason')}.\n"
    rows = _rows(
        sim["rows"],
        [
            ("clients", None),
            ("rounds", None),
            ("first_round_train_s", ".1f"),
            ("mean_train_s_after_first", ".1f"),
            ("mean_eval_s", ".1f"),
        ],
    )
    g = sim["train_growth"]
    return (
        f"\nTFF simulation round time ({sim['model']}, iid, secure, every client every round):"
        "\n\n"
        + _table(
            ["clients", "rounds", "first round train s", "train s, rounds 2+ (or 1)", "eval s"],
            rows,
        )
        + f"\n- training: {_f(sim['train_s_per_added_client'], '.3f')} s per added client; "
        f"x{_f(g['train_ratio'], '.1f')} from {g['clients_from']} to {g['clients_to']} clients\n"
    )


def _secagg_md(s: dict[str, Any], suite: str) -> str:
    sa = s["secagg"]
    text = f"### {suite}\n\n"
    if suite == "round":
        text += _fleet_md(s["fleet"])
    if not sa.get("available"):
        text += f"Secure aggregation: {sa.get('reason')}.\n"
    elif suite == "round":
        rows = [
            [
                str(r["n"]),
                str(r["m"]),
                _f(r["dropout"], ".0%"),
                _f(r["round_s"], ".3f"),
                _f(r["plain_sum_s"], ".5f"),
                _f(r["round_over_plain_sum"], ",.0f"),
                _f(r["bytes_over_plain"], ".2f"),
            ]
            for r in sa["rounds"]
        ]
        text += f"From `{sa['script']} {' '.join(sa['args'])}`:\n\n" + _table(
            ["n", "m", "dropout", "round s", "plain sum s", "round / plain", "bytes / plain"], rows
        )
    else:
        rows = _rows(
            sa["vs_n"],
            [
                ("n", None),
                ("m", None),
                ("client_s", ".3f"),
                ("server_s", ".3f"),
                ("round_s", ".3f"),
            ],
        )
        text += f"From `{sa['script']} {' '.join(sa['args'])}`:\n\n" + _table(
            ["n", "m", "client s", "server s", "round s"], rows
        )
        for key, g in sa.get("growth", {}).items():
            if g:
                text += (
                    f"\n- {key}: x{g['value_ratio']:.1f} from n={g['n_from']} to n={g['n_to']} "
                    f"(n x{g['n_ratio']:.0f})"
                )
        text += "\n"
    if suite == "scaling":
        text += _simulation_md(s["simulation"])
    return text


def _edge_md(s: dict[str, Any]) -> str:
    text = f"### edge (TensorFlow-free path, runtime {s['runtime']})\n\n"
    text += _inference_md(s["inference"], "edge: inference", "####")
    st, ep = s["training"]["step"], s["training"]["local_epoch"]
    text += "\n#### edge: training\n\n" + _table(
        ["threads", "step p50 ms", "step p99 ms", "CPU ms (all threads)"],
        [
            [t, _f(f["p50_ms"], ".2f"), _f(f["p99_ms"], ".2f"), _f(f.get("cpu_ms"), ".2f")]
            for t, f in st["tflite_by_threads"].items()
        ],
    )
    if "tflite_s" in ep:
        text += f"\nOne local epoch ({ep['names']} names): {ep['tflite_s']:.2f} s.\n"
    else:
        text += f"\nLocal epoch: {ep['skipped']}.\n"
    text += "\n" + _footprint_md(s["footprint"], "edge: footprint", "####")
    return text


def markdown(results: dict[str, Any]) -> str:
    """The whole report as Markdown: platform, targets, then one section per suite."""
    p = results["platform"]
    pk = ", ".join(f"{k} {v}" for k, v in p["packages"].items() if v)
    text = "# pifed benchmark\n\n"
    text += _table(
        ["", ""],
        [
            ["when (UTC)", p["utc"]],
            ["CPU", f"{p['cpu_model']} ({p['architecture']}, {p['cores']} cores)"],
            ["OS", f"{p['os']}, kernel {p['kernel']}"],
            ["Python", f"{p['python']} ({p['python_implementation']})"],
            ["packages", pk],
            [
                "load average at start / end",
                f"{_f((p.get('load_average') or [None])[0], '.2f')} / "
                f"{_f((results.get('load_average_end') or [None])[0], '.2f')}",
            ],
            ["model", results["run"]["summary"]],
            ["mode", "quick (few repetitions: not figures)" if results["quick"] else "full"],
            ["git", str(p.get("git"))],
        ],
    )
    text += "\n## Targets (each a ratio measured side by side in this run)\n\n"
    text += _table(
        ["claim", "ratio", "value", "target", "status"],
        [
            [
                t["claim"],
                t["ratio_name"],
                _f(t["ratio"], ".3g"),
                f"{t['op']} {t['threshold']:g}",
                t["status"],
            ]
            for t in results["targets"]
        ],
    )
    suites = results["suites"]
    text += "\n## Suites\n\n"
    for name, s in suites.items():
        if "error" in s:
            text += f"### {name}\n\nFAILED: {s['error']} (log: {s.get('log')})\n\n"
        elif name == "inference":
            text += _inference_md(s, "inference") + "\n"
        elif name == "training":
            text += _training_md(s) + "\n"
        elif name == "footprint":
            text += _footprint_md(s, "footprint") + "\n"
        elif name in ("round", "scaling"):
            text += _secagg_md(s, name) + "\n"
        elif name == "edge":
            text += _edge_md(s) + "\n"
    if results.get("charts"):
        text += "## Charts\n\n" + "".join(f"![{c}]({c})\n" for c in results["charts"])
    elif results.get("charts_skipped"):
        text += f"## Charts\n\nSkipped: {results['charts_skipped']}\n"
    return text


# --- charts --------------------------------------------------------------------------------


def _latency_chart(plt: Any, s: dict[str, Any], path: Path, title: str) -> None:
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
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _threads_chart(plt: Any, s: dict[str, Any], path: Path, title: str) -> None:
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
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _training_chart(plt: Any, s: dict[str, Any], path: Path) -> None:
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
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _footprint_chart(plt: Any, s: dict[str, Any], path: Path) -> None:
    clients = s["clients"]
    inst = s["installed"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    names = list(clients)
    a.bar(names, [clients[n]["peak_rss_bytes"] / 2**20 for n in names], color="tab:purple")
    a.set_ylabel("peak RSS, MiB")
    a.tick_params(axis="x", labelrotation=20)
    sets = {
        "edge": inst["edge"]["bytes"],
        "coordinator": inst["coordinator"]["bytes"],
        "whole env": inst["full_venv"]["bytes"],
    }
    b.bar(list(sets), [v / 1e6 for v in sets.values()], color="tab:gray")
    b.set_yscale("log")
    b.set_ylabel("installed size, MB (log)")
    fig.suptitle("footprint")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _targets_chart(plt: Any, targets: list[dict[str, Any]], path: Path) -> None:
    done = [t for t in targets if t["ratio"] is not None]
    # Margin > 1 means met, whichever way the target points.
    margin = [
        t["ratio"] / t["threshold"] if t["op"] == ">=" else t["threshold"] / t["ratio"]
        for t in done
    ]
    fig, ax = plt.subplots(figsize=(9, 1 + 0.7 * len(done)))
    colors = ["tab:green" if m >= 1 else "tab:red" for m in margin]
    bars = ax.barh([t["key"] for t in done], margin, color=colors)
    ax.bar_label(
        bars, [f" {t['ratio']:.3g} (target {t['op']} {t['threshold']:g})" for t in done], fontsize=8
    )
    ax.axvline(1.0, color="black", ls="--")
    ax.set_xscale("log")
    ax.set_xlim(min([*margin, 1.0]) / 1.5, max([*margin, 1.0]) * 4)
    ax.set_xlabel("margin over target (> 1: met), log scale")
    ax.set_title("targets: ratios measured side by side in one run")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _scaling_chart(plt: Any, s: dict[str, Any], path: Path) -> None:
    pts = s["secagg"]["vs_n"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in ("client_s", "server_s", "round_s"):
        ax.plot([p["n"] for p in pts], [p[key] for p in pts], "o-", label=key)
    ax.set_xlabel("clients n")
    ax.set_ylabel("seconds")
    ax.legend()
    ax.set_title("secure aggregation vs n")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _simulation_chart(plt: Any, sim: dict[str, Any], path: Path) -> None:
    rows = sim["rows"]
    fig, ax = plt.subplots(figsize=(6, 4))
    clients = [r["clients"] for r in rows]
    ax.plot(clients, [r["mean_train_s_after_first"] for r in rows], "o-", label="TFF training")
    ax.plot(clients, [r["mean_eval_s"] for r in rows], "o-", label="export + on-device eval")
    ax.set_xlabel("simulated clients")
    ax.set_ylabel("seconds per round")
    ax.legend()
    ax.set_title(f"simulation round time ({sim['model']})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _fleet_chart(plt: Any, fleet: dict[str, Any], path: Path) -> None:
    stages = [f"{k}_s" for k in ("train", "setup_and_keys", "mask_upload", "unmask_aggregate")]
    stages += ["export_s", "evaluate_s", "deploy_s"]
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, r in enumerate(fleet["rounds"]):
        left = 0.0
        for j, key in enumerate(stages):
            width = r.get(key) or 0.0
            ax.barh(i, width, left=left, color=f"C{j}", label=key[:-2] if i == 0 else None)
            left += width
    ax.set_yticks(range(len(fleet["rounds"])), [f"round {r['round']}" for r in fleet["rounds"]])
    ax.set_xlabel("seconds")
    ax.legend(fontsize=7)
    ax.set_title(f"one fleet round by stage ({fleet['devices']} devices, GRU-{fleet['units']})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def charts(results: dict[str, Any], out: Path) -> tuple[list[str], str | None]:
    """Write the PNGs for whatever suites ran; returns (file names, reason if skipped)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "matplotlib is not installed (the edge set has none); re-render elsewhere with "
    suites = {k: v for k, v in results["suites"].items() if "error" not in v}
    jobs: list[tuple[str, Callable[[Path], None]]] = []
    if any(t["ratio"] is not None for t in results["targets"]):
        jobs.append(("targets.png", lambda p: _targets_chart(plt, results["targets"], p)))
    if "inference" in suites:
        s = suites["inference"]
        jobs.append(("inference_latency.png", lambda p: _latency_chart(plt, s, p, "inference")))
        jobs.append(
            ("inference_threads.png", lambda p: _threads_chart(plt, s, p, "TFLite threads"))
        )
    if "training" in suites:
        jobs.append(("training.png", lambda p: _training_chart(plt, suites["training"], p)))
    if "footprint" in suites:
        jobs.append(("footprint.png", lambda p: _footprint_chart(plt, suites["footprint"], p)))
    if "edge" in suites:
        e = suites["edge"]
        jobs.append(
            ("edge_inference.png", lambda p: _latency_chart(plt, e["inference"], p, "edge"))
        )
        jobs.append(("edge_threads.png", lambda p: _threads_chart(plt, e["inference"], p, "edge")))
        jobs.append(("edge_footprint.png", lambda p: _footprint_chart(plt, e["footprint"], p)))
    if "scaling" in suites and suites["scaling"]["secagg"].get("vs_n"):
        jobs.append(("scaling.png", lambda p: _scaling_chart(plt, suites["scaling"], p)))
    if "scaling" in suites and suites["scaling"].get("simulation", {}).get("available"):
        sim = suites["scaling"]["simulation"]
        jobs.append(("simulation_scaling.png", lambda p: _simulation_chart(plt, sim, p)))
    if "round" in suites and suites["round"].get("fleet", {}).get("rounds"):
        fleet = suites["round"]["fleet"]
        jobs.append(("fleet_round.png", lambda p: _fleet_chart(plt, fleet, p)))
    written = []
    for name, job in jobs:
        job(out / name)
        written.append(name)
    return written, None


def render(out: Path, results: dict[str, Any]) -> dict[str, Any]:
    """Charts, then results.md, then results.json (which lists the charts) into ``out``."""
    written, skipped = charts(results, out)
    results["charts"] = written
    if skipped:
        results["charts_skipped"] = skipped + f"`python benchmarks/bench_report.py {out}`"
    (out / "results.md").write_text(markdown(results))
    (out / "results.json").write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
    return results


def main(argv: list[str] | None = None) -> int:
    """Re-render results.md and the charts of an existing results directory."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: bench_report.py DIR (a `pifed bench --out` directory)", file=sys.stderr)
        return 2
    out = Path(args[0])
    results = json.loads((out / "results.json").read_text())
    results.pop("charts_skipped", None)
    render(out, results)
    print(f"wrote {out}/results.md and {len(results['charts'])} charts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
