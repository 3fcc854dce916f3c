"""What a simulation writes: metrics.csv, metrics.json and accuracy curves (TF-free).

One row per (run, round) in the CSV; the JSON adds the configuration, the data and model sizes,
the backend and the final model's artifacts, so a result can always be traced to its settings.
The configuration is ``SimulationConfig.to_dict()``: the round settings flat among the rest,
as reports have always printed it.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from federated.simulation.evaluation import RoundRecord
from federated.simulation.run import SimulationResult
from model.manifest import write_atomic

CSV_COLUMNS = (
    "run",
    "round",
    "version",
    "clients_sampled",
    "train_loss",
    "train_accuracy",
    "fleet_accuracy",
    "fleet_balanced_accuracy",
    "fleet_macro_f1",
    "fleet_float_accuracy",
    "fleet_float_balanced_accuracy",
    "fleet_examples",
    "fleet_devices",
    "test_accuracy",
    "test_balanced_accuracy",
    "test_int8_accuracy",
    "test_int8_balanced_accuracy",
    "promote",
    "gate_reason",
    "deployed_version",
    "train_seconds",
    "eval_seconds",
)
PLOT_FILE = "curves.png"


def metrics_rows(result: SimulationResult) -> list[dict[str, Any]]:
    """The CSV rows: every round of every run, in run order."""
    rows = []
    for run in result.runs:
        for rec in run.rounds:
            d = rec.to_dict()
            rows.append({k: d[k] for k in CSV_COLUMNS})
    return rows


def write_csv(result: SimulationResult, path: Path) -> None:
    """``metrics.csv``: one row per round and run."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(metrics_rows(result))
    write_atomic(path, buf.getvalue().encode())


def report_dict(result: SimulationResult) -> dict[str, Any]:
    """``metrics.json``: config, sizes, backend, every round of every run, the final model."""
    runs = {}
    for run in result.runs:
        runs[run.name] = {
            "seconds": run.seconds,
            "final": run.final.to_dict(),
            "deployed_version": run.final.deployed_version,
            "rounds": [r.to_dict() for r in run.rounds],
        }
    return {
        "config": result.config.to_dict(),
        "data": result.data_summary,
        "model_config": result.model_config,
        "backend": result.backend,
        "primary_run": result.primary,
        "runs": runs,
        "final_model": result.final_model,
        "seconds": result.seconds,
    }


def write_json(result: SimulationResult, path: Path) -> None:
    """Write ``metrics.json``."""
    write_atomic(path, json.dumps(report_dict(result), indent=2).encode())


def _series(rounds: list[RoundRecord], key: str) -> list[float]:
    return [float(getattr(r, key)) for r in rounds]


def plot_curves(result: SimulationResult, path: Path) -> None:
    """Accuracy and balanced accuracy per round, every run side by side on the same axes.

    Solid: the global test split (float artifact). Dashed: the fleet, on-device (gate artifact).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kind = result.config.gate_kind
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    panels = (
        ("accuracy", "test_accuracy", "fleet_accuracy"),
        ("balanced accuracy", "test_balanced_accuracy", "fleet_balanced_accuracy"),
    )
    colors = {
        "centralized": "tab:gray",
        "federated-plain": "tab:blue",
        "federated-secure": "tab:red",
    }
    for ax, (title, test_key, fleet_key) in zip(axes, panels, strict=True):
        for run in result.runs:
            x = [r.round for r in run.rounds]
            c = colors.get(run.name)
            ax.plot(x, _series(run.rounds, test_key), "o-", color=c, label=f"{run.name}: test")
            ax.plot(
                x,
                _series(run.rounds, fleet_key),
                "s--",
                color=c,
                alpha=0.7,
                label=f"{run.name}: fleet ({kind}, on-device)",
            )
        ax.set_title(title)
        ax.set_xlabel("round")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fraction correct")
    axes[1].legend(fontsize=7, loc="lower right")
    cfg = result.config
    steps, epochs = cfg.settings.local_steps, cfg.settings.local_epochs
    cap = f" capped at {steps} steps" if steps else ""
    fig.suptitle(
        f"{cfg.clients} clients, {cfg.partition}, {epochs} local epoch(s){cap}, GRU-{cfg.units}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_all(result: SimulationResult, out_dir: str | Path) -> list[Path]:
    """metrics.csv, metrics.json and curves.png under ``out_dir``; returns the paths."""
    out = Path(out_dir)
    paths = [out / "metrics.csv", out / "metrics.json", out / PLOT_FILE]
    write_csv(result, paths[0])
    write_json(result, paths[1])
    plot_curves(result, paths[2])
    return paths
