"""The footprint suite's part of the report: its targets, its Markdown section and its chart.

Reads only the ``footprint`` section of results.json (the edge suite's report reuses the
section and the chart for its edge-client figures). Stdlib only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.suite.charts import Chart, save
from benchmarks.suite.tables import mib, num, table
from benchmarks.suite.targets import Target, get

TARGETS = (
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
        lambda s: float(get(s, "installed", "edge_over_full_venv")),
    ),
)


def footprint_md(s: dict[str, Any], title: str, level: str = "###") -> str:
    """Each client process's peak RSS and times, then the installed size of each set."""
    rows = []
    for kind, c in s["clients"].items():
        rows.append(
            [
                kind,
                c["runtime"],
                mib(c["peak_rss_bytes"]),
                num(c["import_s"], ".2f"),
                num(c["work_s"], ".2f"),
                num(c["wall_s"], ".2f"),
                str(c["tf_modules_loaded"]),
            ]
        )
    text = f"{level} {title}\n\nEach client is a fresh process: load the int8 model and the train "
    text += "artifact, evaluate on the test split, train one step.\n\n"
    text += table(
        ["client", "runtime", "peak RSS MiB", "import s", "work s", "wall s", "TF modules"], rows
    )
    inst = s["installed"]
    text += "\nInstalled size (RECORD files of installed distributions):\n\n"
    text += table(
        ["set", "distributions", "MB"],
        [
            [
                "edge (" + ", ".join(inst["edge"]["distributions"]) + ")",
                str(inst["edge"]["count"]),
                num(inst["edge"]["bytes"] / 1e6),
            ],
            [
                "coordinator (pifed[full] closure)",
                str(inst["coordinator"]["count"]),
                num(inst["coordinator"]["bytes"] / 1e6),
            ],
            [
                "whole environment",
                str(inst["full_venv"]["count"]),
                num(inst["full_venv"]["bytes"] / 1e6),
            ],
        ],
    )
    text += f"\nedge / whole environment: **{inst['edge_over_full_venv']:.3f}**"
    if inst.get("edge_over_coordinator") is not None:
        text += f"; edge / coordinator set: {inst['edge_over_coordinator']:.3f}"
    text += "\n"
    return text


def section(s: dict[str, Any]) -> str:
    """The ``### footprint`` section of results.md."""
    return footprint_md(s, "footprint")


def footprint_chart(plt: Any, s: dict[str, Any], path: Path) -> None:
    """Peak RSS per client, and installed size per dependency set (log)."""
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
    save(plt, fig, path)


def charts(s: dict[str, Any]) -> list[Chart]:
    """footprint.png."""
    return [("footprint.png", lambda plt, p: footprint_chart(plt, s, p))]
