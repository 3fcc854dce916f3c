"""Scaling suite: secure-aggregation cost against the number of clients n.

    uv run python benchmarks/bench_scaling.py --run RUN --out DIR

Reads the secagg benchmark's results (running ``secagg_bench.py --quick`` once if the round
suite has not already, see bench_round.py) and groups them by n: client and server time, round
time, and the growth of each from the smallest n to the largest. Simulation round time against
clients is reported as not available here (see bench_round.simulation_reason), never estimated.
"""

from __future__ import annotations

import sys
from typing import Any

from bench_round import secagg_section
from suite_contract import suite_parser, write_section


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
    print(f"  simulation round time vs clients: {section['simulation']['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
