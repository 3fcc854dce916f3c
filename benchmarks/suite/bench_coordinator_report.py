"""The coordinator suite's part of the report: its targets and its Markdown section (no chart).

Reads only the ``coordinator`` section of results.json. Stdlib only.
"""

from __future__ import annotations

from typing import Any

from benchmarks.suite.charts import Chart
from benchmarks.suite.tables import num, table
from benchmarks.suite.targets import Target, get

TARGETS = (
    Target(
        "coordinator_rss_vs_tensorflow",
        "coordinator",
        "coordinator peak RSS in a fleet run at most 1/5 of the TensorFlow coordinator's",
        "peak RSS without TensorFlow / with the converter",
        "<=",
        0.2,
        lambda s: float(get(s, "fleet", "rss_ratio")),
    ),
    Target(
        "candidate_export_vs_converter",
        "coordinator",
        "candidate export per round at most 1/20 of the converter's",
        "template-map export s / converter export s (float)",
        "<=",
        0.05,
        lambda s: float(get(s, "export", "float", "map_over_converter")),
    ),
    Target(
        "coordinator_start_to_listening",
        "coordinator",
        "coordinator start to listening from an existing model folder under 5 s",
        "seconds, without TensorFlow",
        "<=",
        5.0,
        lambda s: float(get(s, "start", "no_tensorflow_s")),
    ),
    Target(
        "server_install_vs_full",
        "coordinator",
        "server install set at most 1/10 of the full set's installed size",
        "server set bytes / full set bytes",
        "<=",
        0.1,
        lambda s: float(get(s, "installed", "server_over_full")),
    ),
    Target(
        "fleet_time_vs_converter",
        "coordinator",
        "a fleet run is no slower than with today's coordinator",
        "fleet wall s without TensorFlow / with the converter",
        "<=",
        1.0,
        lambda s: float(get(s, "fleet", "wall_ratio")),
    ),
)


def section(s: dict[str, Any]) -> str:
    """The ``### coordinator`` section."""
    rows = [
        [
            label,
            num(e["map_s"] * 1000, ".1f"),
            num(e["converter_s"] * 1000, ".0f"),
            num(e["map_over_converter"], ".4f"),
            str(e["byte_identical"]),
        ]
        for label, e in s["export"].items()
    ]
    text = "### coordinator\n\nCandidate export, median of interleaved repetitions:\n\n"
    text += table(["kinds", "map ms", "converter ms", "ratio", "byte-identical"], rows)
    st = s["start"]
    text += (
        f"\nStart to listening (`pifed server --model DIR`, fresh database): "
        f"{num(st['no_tensorflow_s'], '.2f')} s without TensorFlow, "
        f"{num(st['full_set_s'], '.2f')} s with the full set.\n\n"
    )
    inst = s["installed"]
    text += (
        f"Installed: server set {num(inst['server']['bytes'] / 1e6, '.1f')} MB "
        f"({inst['server']['count']} distributions), full set "
        f"{num(inst['full']['bytes'] / 1e6, '.1f')} MB ({inst['full']['count']}).\n\n"
    )
    f = s["fleet"]
    if "rss_ratio" not in f:
        return text + f"Fleet: {f.get('reason')}.\n"
    rows = [
        [
            name,
            num(f[key]["peak_rss_mb"], ".0f"),
            num(f[key]["wall_s"], ".1f"),
            f"{f[key]['ok_rounds']}/{f[key]['rounds']}",
            num(sum(x or 0 for x in f[key]["export_s"]) / max(1, f[key]["rounds"]), ".3f"),
        ]
        for name, key in (("no TensorFlow (map)", "no_tensorflow"), ("converter", "converter"))
    ]
    text += f"Fleet: {f['devices']} `pifed edge` processes, {f['rounds']} rounds, TLS, "
    text += "secure aggregation, gate and deployments; the coordinator in its own process:\n\n"
    return text + table(
        ["coordinator", "peak RSS MB", "wall s", "ok rounds", "export s/round"], rows
    )


def charts(s: dict[str, Any]) -> list[Chart]:
    """No chart: the targets chart shows the ratios."""
    return []
