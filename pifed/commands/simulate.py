"""``pifed simulate``: the fleet, simulated with TensorFlow Federated (thin CLI shell).

The orchestration lives in the ``federated/simulation/`` package; this module turns flags into
a ``SimulationConfig`` (the round flags are the fleet's, ``pifed.flags.add_round_settings``),
shows progress and writes the report.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, cast

from federated.simulation.config import OPTIMIZERS
from model.dataset import load_names, resolve_data_dir
from pifed import flags

if TYPE_CHECKING:
    from federated.round_settings import RoundSettings
    from federated.simulation.config import SimulationConfig
    from federated.simulation.workers import WorkerAddress
    from model.dataset import NamesDataset

EXIT_USAGE = 2
EXIT_SIGTERM = 128 + signal.SIGTERM


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``pifed simulate``."""
    p = sub.add_parser(
        "simulate",
        help="simulate the fleet with TFF: FedAvg rounds, on-device evaluation, the gate",
        description="Federated averaging over simulated devices (the same partitions, gate "
        "and TFLite artifacts as the fleet), with secure aggregation on or off. Writes "
        "metrics.csv, metrics.json, curves.png and the final model under --out.",
        formatter_class=_HelpFormatter,
    )
    flags.add_data(p)
    flags.add_out(p)
    p.add_argument("--clients", type=int, default=10, metavar="N", help="simulated devices")
    p.add_argument(
        "--fraction", type=float, default=1.0, metavar="F", help="fraction sampled each round"
    )
    p.add_argument("--rounds", type=int, default=10, metavar="R", help="federated rounds")
    flags.add_round_settings(p)
    p.add_argument(
        "--batch-size", type=int, default=32, metavar="B", help="client batch (a Pi uses 32)"
    )
    p.add_argument("--client-optimizer", choices=OPTIMIZERS, default="sgd")
    p.add_argument("--server-optimizer", choices=OPTIMIZERS, default="sgd")
    p.add_argument(
        "--server-momentum",
        type=float,
        default=0.0,
        metavar="BETA",
        help="server SGD momentum (FedAvgM); 0, the default, is plain FedAvg as the fleet runs it",
    )
    p.add_argument(
        "--partition",
        default="iid",
        metavar="SCHEME",
        help="iid, dirichlet:ALPHA, language or sorted-halves",
    )
    p.add_argument(
        "--secure",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="secure aggregation (TFF secure sums with zeroing and clipping)",
    )
    p.add_argument(
        "--clip",
        type=float,
        default=None,
        metavar="BOUND",
        help="fixed L2 clip of client updates under secure aggregation "
        "(default: TFF's adaptive clipping)",
    )
    p.add_argument(
        "--coordinate-clip",
        type=float,
        default=None,
        metavar="BOUND",
        help="clip each update coordinate to +-BOUND with no L2 clip or zeroing, as the fleet's "
        "secure aggregation does (pifed server --clip); excludes --clip",
    )
    p.add_argument(
        "--init-model",
        metavar="DIR",
        default=None,
        help="start from this model folder's vocabulary and weights (e.g. a fleet's "
        "init-model) instead of a fresh seeded model",
    )
    p.add_argument(
        "--compare",
        action="store_true",
        help="also run centralized and federated-plain/secure, plotted side by side",
    )
    p.add_argument(
        "--workers",
        metavar="HOST:PORT,...",
        help="run on these TFF worker_binary processes (default: one local worker)",
    )
    p.add_argument(
        "--eval-every",
        type=int,
        default=1,
        metavar="K",
        help="export, evaluate on-device and gate every K rounds and the last (default: every "
        "round, as the fleet does); the rounds between train only and are not recorded",
    )
    p.add_argument("--units", type=int, default=128, help="GRU units per direction")
    p.add_argument("--embed-dim", type=int, default=64, help="character embedding size")
    flags.add_seed(p)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends each flag's default to its help, unless the help already states it (the shared
    round flags of ``pifed.flags`` do)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.help and "(default:" in action.help:
            return action.help
        return super()._get_help_string(action)


class _DropUnusedOpNoise(logging.Filter):
    """TFF's secure aggregator trips TensorFlow's 'Object was never used' ERROR log (harmless)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Object was never used" not in str(record.getMessage())


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(EXIT_SIGTERM)


def run(args: argparse.Namespace) -> int:
    """Build the config, run the simulation with a progress display, write the report."""
    from federated.gate import GateError
    from federated.round_settings import RoundSettingsError
    from federated.simulation.config import SimulationConfig, SimulationConfigError
    from federated.simulation.workers import (
        WorkerAddressError,
        WorkerError,
        interrupts_stop_workers,
        parse_workers,
    )

    try:
        workers = parse_workers(args.workers) if args.workers else ()
        cfg = SimulationConfig(
            clients=args.clients,
            fraction=args.fraction,
            rounds=args.rounds,
            settings=cast("RoundSettings", flags.round_settings(args)),
            batch_size=args.batch_size,
            client_optimizer=args.client_optimizer,
            server_optimizer=args.server_optimizer,
            server_momentum=args.server_momentum,
            partition=args.partition,
            secure=args.secure,
            clip=args.clip,
            coordinate_clip=args.coordinate_clip,
            init_model=args.init_model,
            units=args.units,
            embed_dim=args.embed_dim,
            seed=args.seed,
            eval_every=args.eval_every,
        )
    except (SimulationConfigError, RoundSettingsError, WorkerAddressError, GateError) as e:
        print(f"pifed simulate: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    ds = load_names(resolve_data_dir(args.data))
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        with interrupts_stop_workers():
            return _simulate(args, cfg, ds, workers)
    except (WorkerError, SimulationConfigError) as e:
        print(f"pifed simulate: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        signal.signal(signal.SIGTERM, previous)


def _simulate(
    args: argparse.Namespace,
    cfg: SimulationConfig,
    ds: NamesDataset,
    workers: tuple[WorkerAddress, ...],
) -> int:
    import tensorflow as tf
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from federated.simulation import RoundRecord, simulate
    from federated.simulation.report import write_all

    tf.get_logger().addFilter(_DropUnusedOpNoise())
    console = Console(stderr=True)
    console.print(f"[bold]pifed simulate[/]: {len(ds)} names, {cfg}")
    n_runs = 3 if args.compare else 1
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        evaluated = sum(cfg.evaluates(r) for r in range(1, cfg.rounds + 1))
        task = bar.add_task("starting", total=evaluated * n_runs)

        def on_stage(name: str) -> None:
            bar.update(task, description=name)

        def on_round(r: RoundRecord) -> None:
            loss = "-" if r.train_loss is None else f"{r.train_loss:.3f}"
            tacc = "-" if r.train_accuracy is None else f"{r.train_accuracy:.3f}"
            gate = "" if r.promote is None else ("  promote" if r.promote else "  hold")
            bar.console.print(
                f"{r.run} round {r.round}: loss {loss}  train acc {tacc}  "
                f"fleet {cfg.gate_kind} acc {r.fleet_accuracy:.3f} "
                f"(bal {r.fleet_balanced_accuracy:.3f})  test acc {r.test_accuracy:.3f} "
                f"(bal {r.test_balanced_accuracy:.3f})  {r.train_seconds:.1f}s+"
                f"{r.eval_seconds:.1f}s{gate}"
            )
            bar.advance(task)

        result = simulate(
            ds,
            cfg,
            args.out,
            compare=args.compare,
            workers=workers,
            on_round=on_round,
            on_stage=on_stage,
        )
    paths = write_all(result, args.out)
    table = Table(title=f"after {cfg.rounds} rounds ({result.seconds:.0f} s)")
    for col in (
        "run",
        "test acc",
        "test bal",
        f"fleet {cfg.gate_kind} acc",
        "fleet bal",
        "deployed",
    ):
        table.add_column(col, justify="right")
    for run in result.runs:
        f = run.final
        table.add_row(
            run.name,
            f"{f.test_accuracy:.4f}",
            f"{f.test_balanced_accuracy:.4f}",
            f"{f.fleet_accuracy:.4f}",
            f"{f.fleet_balanced_accuracy:.4f}",
            f.deployed_version or "-",
        )
    Console().print(table)
    out = Path(args.out)
    console.print(
        f"wrote {', '.join(str(p.relative_to(out)) for p in paths)} and model/ under {out}"
    )
    return 0
