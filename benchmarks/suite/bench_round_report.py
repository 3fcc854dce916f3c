"""The round suite's part of the report: its Markdown section and its chart (no targets).

A fleet round by stage and secure aggregation against a plain sum are reported as measured;
neither is a target. Reads only the ``round`` section of results.json. Stdlib only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.suite.charts import Chart, save
from benchmarks.suite.tables import num, table
from benchmarks.suite.targets import Target

TARGETS: tuple[Target, ...] = ()
#: The coordinator's stages, in round order (bench_round.fleet_breakdown's keys).
FLEET_STAGES = (
    "train_s",
    "setup_and_keys_s",
    "mask_upload_s",
    "unmask_aggregate_s",
    "export_s",
    "evaluate_s",
    "deploy_s",
)


def fleet_md(fleet: dict[str, Any]) -> str:
    """The fleet's rounds, seconds by stage, or why there was no fleet round."""
    if "rounds" not in fleet:
        return f"Fleet round: {fleet.get('reason')}.\n\n"
    keys = (*FLEET_STAGES, "total_s", "secagg_at_most_s")
    rows = [
        [str(r["round"]), *(num(r[k], ".2f") for k in keys), num(r["secagg_at_most_share"], ".1%")]
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
        "beyond one upload and a sum):\n\n" + table(head, rows)
    )
    if not fleet["available"]:
        text += f"\n{fleet['reason']}\n"
    return text + "\n"


def section(s: dict[str, Any]) -> str:
    """The ``### round`` section: the fleet by stage, then secagg rounds against a plain sum."""
    sa = s["secagg"]
    text = "### round\n\n" + fleet_md(s["fleet"])
    if not sa.get("available"):
        return text + f"Secure aggregation: {sa.get('reason')}.\n"
    rows = [
        [
            str(r["n"]),
            str(r["m"]),
            num(r["dropout"], ".0%"),
            num(r["round_s"], ".3f"),
            num(r["plain_sum_s"], ".5f"),
            num(r["round_over_plain_sum"], ",.0f"),
            num(r["bytes_over_plain"], ".2f"),
        ]
        for r in sa["rounds"]
    ]
    return (
        text
        + f"From `{sa['script']} {' '.join(sa['args'])}`:\n\n"
        + table(
            ["n", "m", "dropout", "round s", "plain sum s", "round / plain", "bytes / plain"], rows
        )
    )


def fleet_chart(plt: Any, fleet: dict[str, Any], path: Path) -> None:
    """Each fleet round as one bar, stacked by stage."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, r in enumerate(fleet["rounds"]):
        left = 0.0
        for j, key in enumerate(FLEET_STAGES):
            width = r.get(key) or 0.0
            ax.barh(i, width, left=left, color=f"C{j}", label=key[:-2] if i == 0 else None)
            left += width
    ax.set_yticks(range(len(fleet["rounds"])), [f"round {r['round']}" for r in fleet["rounds"]])
    ax.set_xlabel("seconds")
    ax.legend(fontsize=7)
    ax.set_title(f"one fleet round by stage ({fleet['devices']} devices, GRU-{fleet['units']})")
    save(plt, fig, path)


def charts(s: dict[str, Any]) -> list[Chart]:
    """fleet_round.png, when a fleet round ran."""
    fleet = s.get("fleet", {})
    if not fleet.get("rounds"):
        return []
    return [("fleet_round.png", lambda plt, p: fleet_chart(plt, fleet, p))]
