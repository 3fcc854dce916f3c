"""The simulation's targets, measured in one run each, through the same code as `pifed simulate`.

Usage:
    uv run --frozen python benchmarks/experiments/simulation_targets.py iid [--rounds 10]
        [--units 128]
    uv run --frozen python benchmarks/experiments/simulation_targets.py skew [--rounds 10]
        [--local-steps K]
    uv run --frozen python benchmarks/experiments/simulation_targets.py scaling [--rounds 10]
        [--units 16]

- ``iid``: 2 clients, iid, ``--compare``: centralized reference vs federated-plain vs
  federated-secure at the same number of epochs (rounds x 1 local epoch). Targets: secure
  within 1 point of centralized, secure within 0.5 points of plain (global test accuracy,
  float artifact, last round).
- ``skew``: 2 clients, sorted-halves (each device sees about half of the languages), secure,
  compared with the centralized reference; reports the first round within 3 points.
- ``scaling``: 10, 30 and 100 clients, iid, secure; round time split into TFF training and
  the per-round TFLite export + on-device evaluation.

Each mode writes ``OUT/<mode>/`` (metrics.csv, metrics.json, curves.png, model/) and
``OUT/<mode>.json`` with the figures printed.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from federated.lr_schedule import SCHEDULES
from federated.round_settings import DEFAULT_CLIENT_LR, DEFAULT_SERVER_LR
from federated.simulation.config import SimulationConfig

CLIENT_COUNTS = (10, 30, 100)


def _run(
    ds: Any, out: Path, compare: bool, run_names: list[str] | None = None, **overrides: Any
) -> Any:
    from federated.simulation import simulate
    from federated.simulation.report import write_all

    cfg = SimulationConfig.from_dict(overrides)
    result = simulate(ds, cfg, out, compare=compare, on_round=_print_round, run_names=run_names)
    write_all(result, out)
    return result


def _print_round(r: Any) -> None:
    print(
        f"  {r.run} r{r.round}: test {r.test_accuracy:.4f} bal {r.test_balanced_accuracy:.4f}"
        f" fleet {r.fleet_accuracy:.4f} train {r.train_seconds:.1f}s eval {r.eval_seconds:.1f}s",
        flush=True,
    )


def _acc(result: Any, run: str) -> list[float]:
    return [r.test_accuracy for r in next(x for x in result.runs if x.name == run).rounds]


def _evaluated(result: Any, run: str) -> list[int]:
    """The rounds of ``run`` that were evaluated (every round unless --eval-every)."""
    return [r.round for r in next(x for x in result.runs if x.name == run).rounds]


def _run_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The flags every comparison run (iid, skew) passes to :class:`SimulationConfig`."""
    return {
        "rounds": args.rounds,
        "units": args.units,
        "embed_dim": args.embed_dim,
        "client_lr": args.client_lr,
        "coordinate_clip": args.coordinate_clip,
        "server_lr": args.server_lr,
        "server_momentum": args.server_momentum,
        "client_lr_schedule": args.client_lr_schedule,
        "eval_every": args.eval_every,
        "seed": args.seed,
    }


def iid(ds: Any, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """2 clients, iid: federated (plain and secure) vs centralized at equal epochs."""
    runs = ["centralized", "federated-secure"] if args.no_plain else None
    res = _run(
        ds,
        out / "iid",
        compare=True,
        run_names=runs,
        clients=2,
        local_steps=args.local_steps,
        **_run_settings(args),
    )
    names = [r.name for r in res.runs]
    acc = {n: _acc(res, n) for n in names}
    cen, sec = acc["centralized"], acc["federated-secure"]
    figures: dict[str, Any] = {
        "model": _model(args),
        "epochs": _epochs(args, res.data_summary),
        "centralized_final": cen[-1],
        "secure_final": sec[-1],
        "secure_minus_centralized_points": 100 * (sec[-1] - cen[-1]),
    }
    if "federated-plain" in acc:
        plain = acc["federated-plain"]
        figures["plain_final"] = plain[-1]
        figures["secure_minus_plain_points"] = 100 * (sec[-1] - plain[-1])
    return {
        **figures,
        "per_round": acc,
        "rounds_evaluated": _evaluated(res, "federated-secure"),
        "seconds": res.seconds,
    }


def skew(ds: Any, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """2 clients, sorted-halves, secure, vs the centralized reference at equal epochs.

    The reference is taken from OUT/iid.json when that run used the same rounds, model and
    seed (same global test split; the centralized run trains on all devices' names, so the
    partition changes only which names the devices hold out); otherwise it is run here.
    """
    if args.local_steps:
        return _skew_capped(ds, out, args)
    iid_file = out / "iid.json"
    ref = json.loads(iid_file.read_text()) if iid_file.is_file() else None
    same = ref is not None and ref["epochs"] == args.rounds and ref["model"] == _model(args)
    res = _run(
        ds,
        out / "skew",
        compare=False,
        # The plain run is not needed here: centralized (unless reused) and secure only.
        run_names=["federated-secure"] if same else ["centralized", "federated-secure"],
        clients=2,
        partition="sorted-halves",
        **_run_settings(args),
    )
    cen = ref["per_round"]["centralized"] if same and ref else _acc(res, "centralized")
    sec, rounds = _acc(res, "federated-secure"), _evaluated(res, "federated-secure")
    within = _first_round_within(sec, rounds, cen[-1], points=3)
    return {
        "model": _model(args),
        "epochs": args.rounds,
        "centralized_from": "iid.json" if same else "this run",
        "centralized_final": cen[-1],
        "secure_final": sec[-1],
        "secure_minus_centralized_points": 100 * (sec[-1] - cen[-1]),
        "first_round_within_3_points_of_centralized_final": within,
        "per_round": {"centralized": cen, "federated-secure": sec},
        "rounds_evaluated": rounds,
        "seconds": res.seconds,
    }


def _first_round_within(
    accuracies: list[float], rounds: list[int], reference: float, points: float
) -> int | None:
    """The first evaluated round whose accuracy is within ``points`` of ``reference``."""
    hits = (r for r, a in zip(rounds, accuracies, strict=True) if a >= reference - points / 100)
    return next(hits, None)


def _epochs(args: argparse.Namespace, summary: dict[str, Any]) -> float:
    """Passes over the devices' training names that the run's 2 clients add up to."""
    if not args.local_steps:
        return float(args.rounds)
    sizes = (summary["train_rows_per_client_min"], summary["train_rows_per_client_max"])
    per_client = args.local_steps * SimulationConfig.batch_size
    return args.rounds * sum(min(per_client, n) for n in sizes) / summary["train_rows"]


def _skew_capped(ds: Any, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """sorted-halves with at most ``--local-steps`` batches per client per round.

    The centralized reference then runs the epochs the federated run's examples add up to
    (rounded up), so "the same total number of epochs" still holds. A learning-rate schedule
    runs over each run's own rounds (the reference's epochs, the federated rounds): both start
    at the base rate and decay towards 0 by their last round. A finished federated run
    with exactly these settings in OUT/skew is reused rather than run again.
    """
    from federated.simulation.centralized import run_centralized
    from federated.simulation.data import prepare_data

    common = {
        "clients": 2,
        "partition": "sorted-halves",
        "units": args.units,
        "embed_dim": args.embed_dim,
        "client_lr": args.client_lr,
        "client_lr_schedule": args.client_lr_schedule,
        "seed": args.seed,
    }
    cfg = SimulationConfig.from_dict(
        {
            "rounds": args.rounds,
            "local_steps": args.local_steps,
            "coordinate_clip": args.coordinate_clip,
            "server_lr": args.server_lr,
            "server_momentum": args.server_momentum,
            "eval_every": args.eval_every,
            **common,
        }
    )
    done = out / "skew" / "metrics.json"
    previous = json.loads(done.read_text()) if done.is_file() else None
    if previous is not None and previous["config"] == cfg.to_dict():
        print(f"reusing the federated run in {done}", flush=True)
        done_rounds = previous["runs"]["federated-secure"]["rounds"]
        sec = [r["test_accuracy"] for r in done_rounds]
        rounds = [r["round"] for r in done_rounds]
        summary, fed_seconds = previous["data"], previous["seconds"]
    else:
        res = _run(ds, out / "skew", compare=False, run_names=["federated-secure"], **cfg.to_dict())
        sec, rounds = _acc(res, "federated-secure"), _evaluated(res, "federated-secure")
        summary, fed_seconds = res.data_summary, res.seconds
    epochs = _epochs(args, summary)
    cen_cfg = SimulationConfig.from_dict({"rounds": max(1, math.ceil(epochs)), **common})
    data = prepare_data(ds, 2, "sorted-halves", args.seed, cen_cfg.test_frac, cen_cfg.holdout_frac)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        cen_res = run_centralized(data, cen_cfg, scratch, _print_round)
    cen = [r.test_accuracy for r in cen_res.rounds]
    within = _first_round_within(sec, rounds, cen[-1], points=3)
    return {
        "model": _model(args),
        "rounds": args.rounds,
        "local_steps": args.local_steps,
        "epochs_equivalent": epochs,
        "centralized_epochs": len(cen),
        "centralized_final": cen[-1],
        "secure_final": sec[-1],
        "secure_best": max(sec),
        "secure_minus_centralized_points": 100 * (sec[-1] - cen[-1]),
        "first_round_within_3_points_of_centralized_final": within,
        "per_round": {"centralized": cen, "federated-secure": sec},
        "rounds_evaluated": rounds,
        "seconds": fed_seconds + time.perf_counter() - start,
    }


def _model(args: argparse.Namespace) -> str:
    clip = f" coordinate clip {args.coordinate_clip}" if args.coordinate_clip else ""
    server = f" server lr {args.server_lr}" if args.server_lr != DEFAULT_SERVER_LR else ""
    if args.client_lr_schedule != "constant":
        server = f" {args.client_lr_schedule} schedule{server}"
    momentum = f" server momentum {args.server_momentum}" if args.server_momentum else ""
    steps = f" local steps {args.local_steps}" if args.local_steps else ""
    settings = f"{clip}{server}{momentum}{steps}"
    return f"GRU-{args.units} embed {args.embed_dim} lr {args.client_lr}{settings}"


def scaling_rows(
    ds: Any, out: Path, plan: list[tuple[int, int]], on_row: Any = None, **settings: Any
) -> list[dict[str, Any]]:
    """Round time for each (clients, rounds) in ``plan``: iid, secure, all sampled each round.

    Each row splits a round into TFF training (the first round includes TFF's tracing, so
    later rounds are averaged apart from it) and the round's TFLite export + on-device
    evaluation of every client. ``settings`` go to :class:`SimulationConfig`. The scaling
    suite of ``pifed bench`` (benchmarks/suite/bench_scaling.py) runs this too.
    """
    rows = []
    for n, rounds in plan:
        start = time.perf_counter()
        res = _run(ds, out / f"scaling-{n}", compare=False, clients=n, rounds=rounds, **settings)
        done = res.runs[0].rounds
        later = done[1:] or done
        rows.append(
            {
                "clients": n,
                "rounds": len(done),
                "first_round_train_s": done[0].train_seconds,
                "mean_train_s_after_first": sum(r.train_seconds for r in later) / len(later),
                "mean_eval_s": sum(r.eval_seconds for r in done) / len(done),
                "total_s": time.perf_counter() - start,
                "final_test_accuracy": done[-1].test_accuracy,
            }
        )
        if on_row is not None:
            on_row(rows[-1])
    return rows


def scaling(ds: Any, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Round time for 10, 30 and 100 clients (all sampled every round)."""
    # The full count for the largest fleet; 3 rounds give the others' round time.
    plan = [
        (n, args.rounds if n == max(CLIENT_COUNTS) else min(args.rounds, 3)) for n in CLIENT_COUNTS
    ]
    rows = scaling_rows(
        ds,
        out,
        plan,
        on_row=lambda row: print(json.dumps(row), flush=True),
        units=args.units,
        embed_dim=args.embed_dim,
        client_lr=args.client_lr,
        seed=args.seed,
    )
    return {"model": f"GRU-{args.units} embed {args.embed_dim} lr {args.client_lr}", "rows": rows}


def main() -> int:
    """Run one mode, print its figures, write OUT/<mode>.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("iid", "skew", "scaling"))
    ap.add_argument("--data", help="names folder (default: $PIFED_DATA)")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--units", type=int, default=None)
    ap.add_argument("--embed-dim", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--client-lr", type=float, default=DEFAULT_CLIENT_LR, help="client SGD learning rate"
    )
    ap.add_argument(
        "--coordinate-clip",
        type=float,
        default=None,
        help="the fleet's per-coordinate clip instead of TFF's adaptive aggregator (iid, skew)",
    )
    ap.add_argument(
        "--client-lr-schedule",
        choices=SCHEDULES,
        default="constant",
        help="iid, skew: client rate across rounds (the centralized reference follows it)",
    )
    ap.add_argument(
        "--server-lr",
        type=float,
        default=DEFAULT_SERVER_LR,
        help="server SGD learning rate (iid, skew; the centralized reference has none): with "
        "n clients, n makes one round move by the sum of the updates",
    )
    ap.add_argument(
        "--server-momentum",
        type=float,
        default=0.0,
        help="server SGD momentum, FedAvgM (iid, skew; the centralized reference ignores it)",
    )
    ap.add_argument(
        "--local-steps",
        type=int,
        default=None,
        help="iid, skew: at most this many batches per client per round (iid: centralized "
        "trains as many examples per round; skew: centralized at the epochs those add up to)",
    )
    ap.add_argument(
        "--no-plain",
        action="store_true",
        help="iid: centralized and secure only (a long run's secure-vs-centralized figure)",
    )
    ap.add_argument(
        "--eval-every",
        type=int,
        default=1,
        help="iid, skew: evaluate every K rounds and the last (saves ~5 s per skipped round)",
    )
    ap.add_argument("--out", default="runs/bench-sim")
    args = ap.parse_args()
    small = args.mode == "scaling"
    args.rounds = args.rounds or 10
    args.units = args.units or (16 if small else 128)
    args.embed_dim = args.embed_dim or (8 if small else 64)

    from model.dataset import load_names, resolve_data_dir

    ds = load_names(resolve_data_dir(args.data))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figures = {"iid": iid, "skew": skew, "scaling": scaling}[args.mode](ds, out, args)
    flags = []
    for k, v in vars(args).items():
        if k in ("mode", "data") or v is None or v is False:
            continue
        flags.append(f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}"))
    script = "benchmarks/experiments/simulation_targets.py"
    figures["command"] = f"{script} {args.mode} " + " ".join(flags)
    text = json.dumps(figures, indent=2)
    print(text)
    (out / f"{args.mode}.json").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
