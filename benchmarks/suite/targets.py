"""Targets: a claim, and the ratio measured side by side in one run that decides it.

Each suite's report module declares its own ``TARGETS`` beside its section; this module holds
the type, the evaluation (met / missed / not measured), the printed lines and the chart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Target:
    """One claim of the benchmark, as a ratio measured side by side in one run."""

    key: str
    suite: str
    claim: str
    ratio_name: str
    op: str  # ">=" or "<="
    threshold: float
    ratio: Callable[[dict[str, Any]], float]


def get(d: dict[str, Any], *path: str) -> Any:
    """``d[path[0]][path[1]]...``: a missing key is a KeyError, i.e. "not measured"."""
    for p in path:
        d = d[p]
    return d


def evaluate_targets(targets: list[Target], suites: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target's ratio and whether it is met; ``met`` is None when its suite did not run."""
    out = []
    for t in targets:
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


def targets_chart(plt: Any, targets: list[dict[str, Any]], path: Path) -> None:
    """Each measured target's margin over its threshold (> 1: met), log scale."""
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
