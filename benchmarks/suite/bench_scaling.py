"""Scaling suite: secure-aggregation cost against n, and simulation round time against clients.

    uv run python -m benchmarks.suite.bench_scaling --run RUN --out DIR [--data DIR]

- Reads the secagg benchmark's results (running ``secagg_bench --quick`` once if the round
  suite has not already, see bench_round) and groups them by n: client and server time,
  round time, and the growth of each from the smallest n to the largest.
- Runs the TFF simulation (``scaling_rows`` of ``benchmarks.experiments.simulation_targets``:
  iid, secure, every client every round, GRU-16 so that the figure is TFF's per-client cost
  rather than the model's) at 10, 30 and 100 clients for 2 rounds each (``--quick``: 2 and 4
  clients, 1 round), and reports the training time of a round after the first (TFF traces in
  the first), the export + on-device evaluation time, and the growth per client. Needs the
  names data.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from benchmarks.suite.bench_round import secagg_section
from benchmarks.suite.contract import suite_parser, write_section

# (client counts, rounds each)
SIM_FULL: tuple[tuple[int, ...], int] = ((10, 30, 100), 2)
SIM_QUICK: tuple[tuple[int, ...], int] = ((2, 4), 1)
SIM_MODEL = {"units": 16, "embed_dim": 8}


def simulation_section(out: Path, data: str | None, quick: bool, seed: int) -> dict[str, Any]:
    """Simulation round time at each client count; unavailable without the names data."""
    from model.dataset import DataError, load_names, resolve_data_dir

    try:
        ds = load_names(resolve_data_dir(data))
    except DataError as e:
        return {"available": False, "reason": f"needs the names data (--data): {e}"}
    counts, rounds = SIM_QUICK if quick else SIM_FULL
    try:
        from benchmarks.experiments.simulation_targets import scaling_rows
        from federated.round_settings import DEFAULT_CLIENT_LR

        rows = scaling_rows(
            ds,
            out / "simulation",
            [(n, rounds) for n in counts],
            client_lr=DEFAULT_CLIENT_LR,
            seed=seed,
            **SIM_MODEL,
        )
    except Exception as e:  # reported, never estimated; the secagg results stay
        return {"available": False, "reason": f"the simulation failed: {type(e).__name__}: {e}"}
    lo, hi = rows[0], rows[-1]
    key = "mean_train_s_after_first"
    return {
        "available": True,
        "model": f"GRU-{SIM_MODEL['units']} embed {SIM_MODEL['embed_dim']}",
        "rows": rows,
        "train_s_per_added_client": (hi[key] - lo[key]) / (hi["clients"] - lo["clients"]),
        "train_growth": {
            "clients_from": lo["clients"],
            "clients_to": hi["clients"],
            "clients_ratio": hi["clients"] / lo["clients"],
            "train_ratio": hi[key] / lo[key] if lo[key] else None,
        },
    }


def by_n(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One point per (n, m) at the lowest dropout measured: the cost curve against n."""
    best: dict[tuple[Any, Any], dict[str, Any]] = {}
    for r in rows:
        key = (r.get("n"), r.get("m"))
        if key not in best or (r.get("dropout") or 0) < (best[key].get("dropout") or 0):
            best[key] = r
    points = []
    for (n, m), r in sorted(best.items(), key=lambda kv: (kv[0][1] or 0, kv[0][0] or 0)):
        points.append(
            {
                "n": n,
                "m": m,
                "dropout": r.get("dropout"),
                "client_s": r.get("client_total_mean_s"),
                "server_s": r.get("server_total_s"),
                "round_s": r.get("round_s"),
                "plain_sum_s": r.get("plain_sum_s"),
            }
        )
    return points


def growth(points: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """How ``key`` grows from the smallest to the largest n (same m): a ratio, not a fit."""
    usable = [p for p in points if isinstance(p.get(key), int | float) and p.get("n")]
    if len(usable) < 2:
        return None
    lo, hi = usable[0], usable[-1]
    if not lo[key]:
        return None
    return {
        "n_from": lo["n"],
        "n_to": hi["n"],
        "n_ratio": hi["n"] / lo["n"],
        "value_ratio": hi[key] / lo[key],
    }


def main(argv: list[str] | None = None) -> int:
    """Write scaling.json."""
    args = suite_parser(__doc__).parse_args(argv)
    section, sa = secagg_section(args.out)
    if sa["available"]:
        points = by_n(sa["rows"])
        ms = sorted({p["m"] for p in points if p["m"] is not None})
        first_m = [p for p in points if p["m"] == ms[0]] if ms else points
        section["secagg"]["vs_n"] = points
        section["secagg"]["growth"] = {
            key: growth(first_m, key) for key in ("client_s", "server_s", "round_s")
        }
    section["simulation"] = simulation_section(args.out, args.data, args.quick, args.seed)
    write_section(args.out, "scaling", section)
    print("scaling: secure aggregation against the number of clients n")
    if not sa["available"]:
        print(f"  secagg: {sa['reason']}")
    for p in section["secagg"].get("vs_n", []):
        print(
            f"  n={p['n']} m={p['m']}: client {p['client_s']:.3f} s, server {p['server_s']:.3f} s"
            f", round {p['round_s']:.3f} s"
        )
    for key, g in section["secagg"].get("growth", {}).items():
        if g:
            print(
                f"  {key}: x{g['value_ratio']:.1f} for n x{g['n_ratio']:.0f} "
                f"({g['n_from']} -> {g['n_to']})"
            )
    sim = section["simulation"]
    if not sim["available"]:
        print(f"  simulation round time vs clients: {sim['reason']}")
    else:
        print(f"scaling: TFF simulation round time against clients ({sim['model']}, secure)")
        for r in sim["rows"]:
            print(
                f"  {r['clients']} clients: training {r['mean_train_s_after_first']:.1f} s a round"
                f" (first {r['first_round_train_s']:.1f} s), export + evaluation "
                f"{r['mean_eval_s']:.1f} s"
            )
        g = sim["train_growth"]
        print(
            f"  training: {sim['train_s_per_added_client']:.3f} s per added client; "
            f"x{g['train_ratio']:.1f} for clients x{g['clients_ratio']:.0f}"
            if g["train_ratio"]
            else ""
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
