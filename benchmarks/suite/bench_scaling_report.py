"""The scaling suite's part of the report: its Markdown section and its charts (no targets).

Secure-aggregation cost against n, and simulation round time against clients, are reported as
measured growth ratios, not targets. Reads only the ``scaling`` section of results.json.
Stdlib only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.suite.charts import Chart, save
from benchmarks.suite.tables import cells, num, table
from benchmarks.suite.targets import Target

TARGETS: tuple[Target, ...] = ()


def secagg_md(sa: dict[str, Any]) -> str:
    """Client, server and round time at each n, and how each grows with n."""
    if not sa.get("available"):
        return f"Secure aggregation: {sa.get('reason')}.\n"
    rows = cells(
        sa["vs_n"],
        [("n", None), ("m", None), ("client_s", ".3f"), ("server_s", ".3f"), ("round_s", ".3f")],
    )
    text = f"From `{sa['script']} {' '.join(sa['args'])}`:\n\n" + table(
        ["n", "m", "client s", "server s", "round s"], rows
    )
    for key, g in sa.get("growth", {}).items():
        if g:
            text += (
                f"\n- {key}: x{g['value_ratio']:.1f} from n={g['n_from']} to n={g['n_to']} "
                f"(n x{g['n_ratio']:.0f})"
            )
    return text + "\n"


def simulation_md(sim: dict[str, Any]) -> str:
    """TFF simulation round time at each client count, and the cost per added client."""
    if not sim.get("available"):
        return f"\nSimulation: {sim.get('reason')}.\n"
    rows = cells(
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
        + table(
            ["clients", "rounds", "first round train s", "train s, rounds 2+ (or 1)", "eval s"],
            rows,
        )
        + f"\n- training: {num(sim['train_s_per_added_client'], '.3f')} s per added client; "
        f"x{num(g['train_ratio'], '.1f')} from {g['clients_from']} to {g['clients_to']} clients\n"
    )


def section(s: dict[str, Any]) -> str:
    """The ``### scaling`` section of results.md."""
    return "### scaling\n\n" + secagg_md(s["secagg"]) + simulation_md(s["simulation"])


def scaling_chart(plt: Any, s: dict[str, Any], path: Path) -> None:
    """Client, server and round seconds against n."""
    pts = s["secagg"]["vs_n"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in ("client_s", "server_s", "round_s"):
        ax.plot([p["n"] for p in pts], [p[key] for p in pts], "o-", label=key)
    ax.set_xlabel("clients n")
    ax.set_ylabel("seconds")
    ax.legend()
    ax.set_title("secure aggregation vs n")
    save(plt, fig, path)


def simulation_chart(plt: Any, sim: dict[str, Any], path: Path) -> None:
    """TFF training and export + evaluation seconds per round against simulated clients."""
    rows = sim["rows"]
    fig, ax = plt.subplots(figsize=(6, 4))
    clients = [r["clients"] for r in rows]
    ax.plot(clients, [r["mean_train_s_after_first"] for r in rows], "o-", label="TFF training")
    ax.plot(clients, [r["mean_eval_s"] for r in rows], "o-", label="export + on-device eval")
    ax.set_xlabel("simulated clients")
    ax.set_ylabel("seconds per round")
    ax.legend()
    ax.set_title(f"simulation round time ({sim['model']})")
    save(plt, fig, path)


def charts(s: dict[str, Any]) -> list[Chart]:
    """scaling.png and simulation_scaling.png, for whichever was measured."""
    jobs: list[Chart] = []
    if s["secagg"].get("vs_n"):
        jobs.append(("scaling.png", lambda plt, p: scaling_chart(plt, s, p)))
    sim = s.get("simulation", {})
    if sim.get("available"):
        jobs.append(("simulation_scaling.png", lambda plt, p: simulation_chart(plt, sim, p)))
    return jobs
