"""The benchmark report: asks each suite's report module for its targets, section and charts.

    python -m benchmarks.suite.report DIR     # from the project folder: re-render DIR

Each suite ``X`` owns ``bench_X_report`` beside its measurements (``bench_X``): its
``TARGETS``, its Markdown ``section`` and its ``charts``. This module only puts them together:
the platform table, the targets table, one section per suite that ran, the charts list; and it
writes results.md, the PNGs and results.json.

Everything here reads ``results.json`` only, so a Pi's results can be re-rendered on another
machine (a Pi with the edge set alone has no matplotlib: its run writes the JSON and Markdown,
and says the charts were skipped). Stdlib only at top level; matplotlib is imported lazily.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any, Protocol, cast

from benchmarks.suite.charts import Chart
from benchmarks.suite.tables import num, table
from benchmarks.suite.targets import Target, targets_chart
from benchmarks.suite.targets import evaluate_targets as evaluate
from benchmarks.suite.targets import target_lines as target_lines

#: Suites with targets, in the order results.json has always listed the targets.
TARGET_SUITES = ("inference", "footprint", "training", "coordinator")
#: The order results.json has always listed the charts in (by suite); others follow.
CHART_SUITES = ("inference", "training", "footprint", "edge", "scaling", "round")
RERENDER = f"`python -m {__name__} DIR` from the project folder"


class SuiteReport(Protocol):
    """What each ``bench_<suite>_report`` module provides."""

    TARGETS: tuple[Target, ...]

    def section(self, s: dict[str, Any]) -> str:
        """The suite's Markdown section, heading included."""

    def charts(self, s: dict[str, Any]) -> list[Chart]:
        """The charts the suite's results can be drawn as."""


def suite_report(suite: str) -> SuiteReport:
    """The report module of ``suite`` (``benchmarks.suite.bench_<suite>_report``)."""
    return cast(SuiteReport, importlib.import_module(f"{__package__}.bench_{suite}_report"))


def evaluate_targets(suites: dict[str, Any]) -> list[dict[str, Any]]:
    """Every suite's targets, evaluated against the sections that ran (see targets.py)."""
    targets = [t for suite in TARGET_SUITES for t in suite_report(suite).TARGETS]
    return evaluate(targets, suites)


def _platform_md(results: dict[str, Any]) -> str:
    p = results["platform"]
    pk = ", ".join(f"{k} {v}" for k, v in p["packages"].items() if v)
    return table(
        ["", ""],
        [
            ["when (UTC)", p["utc"]],
            ["CPU", f"{p['cpu_model']} ({p['architecture']}, {p['cores']} cores)"],
            ["OS", f"{p['os']}, kernel {p['kernel']}"],
            ["Python", f"{p['python']} ({p['python_implementation']})"],
            ["packages", pk],
            [
                "load average at start / end",
                f"{num((p.get('load_average') or [None])[0], '.2f')} / "
                f"{num((results.get('load_average_end') or [None])[0], '.2f')}",
            ],
            ["model", results["run"]["summary"]],
            ["mode", "quick (few repetitions: not figures)" if results["quick"] else "full"],
            ["git", str(p.get("git"))],
        ],
    )


def markdown(results: dict[str, Any]) -> str:
    """The whole report as Markdown: platform, targets, then one section per suite."""
    text = "# pifed benchmark\n\n" + _platform_md(results)
    text += "\n## Targets (each a ratio measured side by side in this run)\n\n"
    text += table(
        ["claim", "ratio", "value", "target", "status"],
        [
            [
                t["claim"],
                t["ratio_name"],
                num(t["ratio"], ".3g"),
                f"{t['op']} {t['threshold']:g}",
                t["status"],
            ]
            for t in results["targets"]
        ],
    )
    text += "\n## Suites\n\n"
    for name, s in results["suites"].items():
        if "error" in s:
            text += f"### {name}\n\nFAILED: {s['error']} (log: {s.get('log')})\n\n"
        else:
            text += suite_report(name).section(s) + "\n"
    if results.get("charts"):
        text += "## Charts\n\n" + "".join(f"![{c}]({c})\n" for c in results["charts"])
    elif results.get("charts_skipped"):
        text += f"## Charts\n\nSkipped: {results['charts_skipped']}\n"
    return text


def chart_jobs(results: dict[str, Any]) -> list[Chart]:
    """The targets chart, then each suite's that ran, in the order reports have always had."""
    suites = {k: v for k, v in results["suites"].items() if "error" not in v}
    jobs: list[Chart] = []
    if any(t["ratio"] is not None for t in results["targets"]):
        jobs.append(("targets.png", lambda plt, p: targets_chart(plt, results["targets"], p)))
    order = [
        *(s for s in CHART_SUITES if s in suites),
        *(s for s in suites if s not in CHART_SUITES),
    ]
    for name in order:
        jobs += suite_report(name).charts(suites[name])
    return jobs


def charts(results: dict[str, Any], out: Path) -> tuple[list[str], str | None]:
    """Write the PNGs for whatever suites ran; returns (file names, reason if skipped)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "matplotlib is not installed (the edge set has none); re-render elsewhere with "
    written = []
    for name, draw in chart_jobs(results):
        draw(plt, out / name)
        written.append(name)
    return written, None


def render(out: Path, results: dict[str, Any]) -> dict[str, Any]:
    """Charts, then results.md, then results.json (which lists the charts) into ``out``."""
    written, skipped = charts(results, out)
    results["charts"] = written
    if skipped:
        results["charts_skipped"] = skipped + RERENDER.replace("DIR", str(out))
    (out / "results.md").write_text(markdown(results))
    (out / "results.json").write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
    return results


def main(argv: list[str] | None = None) -> int:
    """Re-render results.md and the charts of an existing results directory."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(f"usage: python -m {__name__} DIR (a `pifed bench --out` directory)", file=sys.stderr)
        return 2
    out = Path(args[0])
    results = json.loads((out / "results.json").read_text())
    results.pop("charts_skipped", None)
    render(out, results)
    print(f"wrote {out}/results.md and {len(results['charts'])} charts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
