"""Benchmark of pifed secure aggregation (Bonawitz et al., CCS 2017) against a plain numpy sum.

Runs whole rounds in one process -- every client and the server, through real serialisation,
relayed by ``federated.secagg_local.LocalRound`` -- and reports per-stage client and server
time, bytes per client, and the same figures for an unmasked sum of the same vectors measured
in the same run. Each grid cell runs twice in the same run: the actively secure protocol (signed
AdvertiseKeys, ConsistencyCheck; what the fleet runs; ``rows``) and the semi-honest variant of
protocol version 1 (``SecAggConfig(active=False)``; ``baseline_rows``), and ``comparison``
reports their ratios -- the added cost of signatures and the consistency round. Dropped clients
leave after ShareKeys
(the costliest point for the server: it must rebuild their masking keys and strip their pairwise
masks from every survivor).

    uv run python -m benchmarks.suite.secagg_bench --out results/secagg
    uv run python -m benchmarks.suite.secagg_bench --out /tmp/sa --n 100 --m 100000 --dropout 0.1
    uv run python -m benchmarks.suite.secagg_bench --out /tmp/sa --quick
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

import edge.secagg.client as client_module
import federated.secagg_unmask as unmask_module
from edge.secagg import DeterministicRandom, ManualClock, SecAggConfig, Stage
from edge.secagg.shamir import ShareCombiner, combine_shares, reference_split, split_secret
from federated.secagg_local import LocalRound, TestAuthority, seeded_parties

STAGES = [stage.name.lower() for stage in Stage]


class ShamirTimer:
    """Wraps the Shamir entry points the state machines call, to report their share of time."""

    def __init__(self) -> None:
        self.split_s = 0.0
        self.combine_s = 0.0

    def __enter__(self) -> ShamirTimer:
        def split(*args: Any, **kwargs: Any) -> list[bytes]:
            t0 = time.perf_counter()
            try:
                return split_secret(*args, **kwargs)
            finally:
                self.split_s += time.perf_counter() - t0

        timer = self

        class TimedCombiner(ShareCombiner):
            __slots__ = ()

            def __init__(self, indices: Any, **kwargs: Any) -> None:
                t0 = time.perf_counter()
                try:
                    super().__init__(indices, **kwargs)
                finally:
                    timer.combine_s += time.perf_counter() - t0

            def combine(self, shares: Any) -> bytes:
                t0 = time.perf_counter()
                try:
                    return super().combine(shares)
                finally:
                    timer.combine_s += time.perf_counter() - t0

        client_module.split_secret = split
        unmask_module.ShareCombiner = TimedCombiner  # type: ignore[misc]
        return self

    def __exit__(self, *exc: object) -> None:
        client_module.split_secret = split_secret
        unmask_module.ShareCombiner = ShareCombiner  # type: ignore[misc]


def run_round(n: int, m: int, dropout: float, seed: int, active: bool = True) -> dict[str, Any]:
    """Run one full round (actively secure, or the semi-honest variant) and return its
    measurements."""
    config = SecAggConfig(client_ids=tuple(range(1, n + 1)), vector_lengths=(m,), active=active)
    drops = min(round(dropout * n), n - config.t)
    dropped = set(range(1, drops + 1))
    rs = np.random.default_rng(seed)
    updates = {cid: rs.uniform(-0.5, 0.5, m).astype(np.float32) for cid in config.client_ids}
    examples = {cid: int(rs.integers(10, 200)) for cid in config.client_ids}

    # Plain baseline: every client serialises its float32 vector, the server adds them up.
    start = time.perf_counter()
    wires = [
        updates[cid].astype("<f4").tobytes() for cid in config.client_ids if cid not in dropped
    ]
    plain_client_s = (time.perf_counter() - start) / len(wires)
    start = time.perf_counter()
    plain = np.zeros(m, dtype=np.float64)
    for wire in wires:
        plain += np.frombuffer(wire, dtype="<f4")
    plain_s = time.perf_counter() - start

    clock = ManualClock()
    authority = TestAuthority(b"secagg-bench")
    # A first round the Pis have once, when they first see their peers' certificates (the
    # active client verifies each certificate once per peer and remembers it); it is timed
    # separately, and the measured round is the steady-state one that follows.
    warm, clients = seeded_parties(
        config, b"warm-%d" % seed, lambda cid: b"client-%d-%d" % (seed, cid), clock, authority
    )
    first = LocalRound(warm, clients, clock, {c: [updates[c]] for c in updates}, examples)
    first.run()
    first_client_s = float(
        np.mean([sum(stage.get(c, 0.0) for stage in first.client_s.values()) for c in clients])
    )
    server, _ = seeded_parties(
        config, b"server-%d" % seed, lambda cid: b"unused-%d" % cid, clock, authority
    )
    rnd = LocalRound(server, clients, clock, {c: [updates[c]] for c in updates}, examples)
    rnd.silent[Stage.MASKED_INPUT_COLLECTION] = dropped  # they leave after ShareKeys

    with ShamirTimer() as shamir:
        round_start = time.perf_counter()
        rnd.run()
        round_s = time.perf_counter() - round_start
    client_s = {stage.name.lower(): v for stage, v in rnd.client_s.items()}
    server_s = {stage.name.lower(): v for stage, v in rnd.server_s.items()}
    sent, received = rnd.sent, rnd.received

    result = server.result
    expected = sum(
        min(examples[cid], config.max_weight) * updates[cid].astype(np.float64)
        for cid in result.survivors
    )
    error = float(np.max(np.abs(result.weighted_sum[0] - expected)))
    bound = len(result.survivors) * config.quantisation.error_bound
    if error >= bound:
        raise AssertionError(f"aggregate error {error} exceeds the quantisation bound {bound}")

    # Shamir in isolation: one 32-byte secret, split among n and rebuilt from t shares.
    rng = DeterministicRandom(b"shamir")
    t0 = time.perf_counter()
    shares = split_secret(bytes(32), config.t, n, rng)
    split_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    reference = reference_split(bytes(32), config.t, n, DeterministicRandom(b"shamir"))
    reference_split_s = time.perf_counter() - t0
    if reference != shares:
        raise AssertionError("split_secret and pycryptodome's Shamir.split disagree")
    t0 = time.perf_counter()
    combine_shares({i + 1: share for i, share in enumerate(shares)}, config.t)
    combine_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    combiner = ShareCombiner(range(1, config.t + 1))
    basis_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    combiner.combine({i: shares[i - 1] for i in combiner.indices})
    batched_s = time.perf_counter() - t0

    full = [cid for cid in config.client_ids if cid not in dropped]
    per_client = {name: float(np.mean(list(v.values()))) for name, v in client_s.items()}
    totals = [sum(stage.get(cid, 0.0) for stage in client_s.values()) for cid in full]
    return {
        "variant": "active" if active else "semi-honest",
        "n": n,
        "m": m,
        "dropout": dropout,
        "dropped": drops,
        "threshold": config.t,
        "client_s": per_client,
        "client_total_s": sum(per_client.values()),
        "client_total_mean_s": float(np.mean(totals)),
        "client_total_max_s": float(np.max(totals)),
        "client_total_first_round_s": first_client_s,
        "server_s": dict(server_s),
        "server_total_s": sum(server_s.values()),
        "round_s": round_s,
        "bytes_sent_per_client": float(np.mean([sent[cid] for cid in full])),
        "bytes_received_per_client": float(np.mean([received[cid] for cid in full])),
        "plain_client_s": plain_client_s,
        "plain_sum_s": plain_s,
        "plain_bytes_sent_per_client": 4 * m,
        "client_shamir_split_s": shamir.split_s / n,
        "server_shamir_combine_s": shamir.combine_s,
        "shamir_split_per_secret_s": split_s,
        "shamir_reference_split_per_secret_s": reference_split_s,
        "shamir_combine_per_secret_s": combine_s,
        "shamir_basis_per_responder_set_s": basis_s,
        "shamir_batched_combine_per_secret_s": batched_s,
        "max_abs_error": error,
        "error_bound": bound,
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    """One table row per configuration; "plain" is the unmasked float32 sum of the same run."""
    head = (
        "| n | m | drop | t | client s per stage (adv/share/mask/unmask) | client total s "
        "(plain) | server s per stage (adv/share/mask/unmask) | server total s (plain) | "
        "round s | sent/client kB (plain) | recv/client kB | of which Shamir: client s, "
        "server s |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        cs = "/".join(f"{r['client_s'].get(s, 0.0):.3f}" for s in STAGES)
        ss = "/".join(f"{r['server_s'].get(s, 0.0):.3f}" for s in STAGES)
        lines.append(
            f"| {r['n']} | {r['m']} | {r['dropout']:.0%} ({r['dropped']}) | {r['threshold']} | "
            f"{cs} | {r['client_total_mean_s']:.3f} ({r['plain_client_s']:.5f}) | {ss} | "
            f"{r['server_total_s']:.2f} ({r['plain_sum_s']:.4f}) | {r['round_s']:.2f} | "
            f"{r['bytes_sent_per_client'] / 1e3:.1f} "
            f"({r['plain_bytes_sent_per_client'] / 1e3:.1f}) | "
            f"{r['bytes_received_per_client'] / 1e3:.1f} | "
            f"{r['client_shamir_split_s']:.3f}, {r['server_shamir_combine_s']:.2f} |"
        )
    return head + "\n".join(lines) + "\n" + shamir_markdown(rows) + targets_markdown(rows)


def shamir_markdown(rows: list[dict[str, Any]]) -> str:
    """Per 32-byte secret: pycryptodome's pure-Python Shamir against ours, timed in this run."""
    lines = [
        "",
        "Shamir, one 32-byte secret (s): pycryptodome `Shamir.split` / `Shamir.combine` against "
        "`split_secret` / `ShareCombiner` (GHASH in C), same run, byte-identical shares.",
        "",
        "| n | t | Shamir.split | split_secret | Shamir.combine | ShareCombiner basis + combine |",
        "|---|---|---|---|---|---|",
    ]
    seen = set()
    for r in rows:
        if r["n"] in seen:
            continue
        seen.add(r["n"])
        lines.append(
            f"| {r['n']} | {r['threshold']} | {r['shamir_reference_split_per_secret_s']:.4f} | "
            f"{r['shamir_split_per_secret_s']:.4f} | {r['shamir_combine_per_secret_s']:.4f} | "
            f"{r['shamir_basis_per_responder_set_s']:.4f} + "
            f"{r['shamir_batched_combine_per_secret_s']:.4f} |"
        )
    return "\n".join(lines) + "\n"


#: Targets at n = 100, m = 100k (docs/secure-aggregation.md): (label, row key, dropouts, limit s).
#: The whole round: at least 10x faster than Flower's SecAgg+ on this machine (173 s).
TARGETS = (
    ("client total", "client_total_mean_s", (0.0, 0.1, 0.3), 0.2),
    ("server total", "server_total_s", (0.1,), 5.0),
    ("whole round in one process", "round_s", (0.0, 0.1, 0.3), 17.3),
)
#: Issue 19: the active protocol's client time per Pi at most this multiple of the semi-honest.
CLIENT_RATIO_TARGET = 1.5
#: The figures compared between the variants: (label, row key).
COMPARED = (
    ("client total s", "client_total_mean_s"),
    ("client s, first round", "client_total_first_round_s"),
    ("server total s", "server_total_s"),
    ("round s", "round_s"),
    ("sent/client B", "bytes_sent_per_client"),
    ("recv/client B", "bytes_received_per_client"),
)


def comparison(rows: list[dict[str, Any]], baseline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per grid cell: each compared figure of the active protocol, of the semi-honest variant
    measured in the same run, and their ratio (active / semi-honest)."""
    base = {(r["n"], r["m"], r["dropout"]): r for r in baseline}
    out = []
    for r in rows:
        b = base.get((r["n"], r["m"], r["dropout"]))
        if b is None:
            continue
        cell: dict[str, Any] = {"n": r["n"], "m": r["m"], "dropout": r["dropout"]}
        for _, key in COMPARED:
            cell[key] = {"active": r[key], "semi_honest": b[key], "ratio": r[key] / b[key]}
        out.append(cell)
    return out


def comparison_markdown(cells: list[dict[str, Any]]) -> str:
    """The added cost of signatures and the ConsistencyCheck round, as ratios."""
    if not cells:
        return ""
    head = "| n | m | drop | " + " | ".join(
        f"{label}: active / semi-honest (ratio)" for label, _ in COMPARED
    )
    lines = [
        "",
        "Actively secure protocol against the semi-honest variant (protocol v1 flow), same run:",
        "",
        head + " |",
        "|---|---|---|" + "---|" * len(COMPARED),
    ]
    for c in cells:
        parts = []
        for _, key in COMPARED:
            v = c[key]
            fmt = ".0f" if key.startswith("bytes") else ".3f"
            parts.append(f"{v['active']:{fmt}} / {v['semi_honest']:{fmt}} ({v['ratio']:.2f}x)")
        lines.append(f"| {c['n']} | {c['m']} | {c['dropout']:.0%} | " + " | ".join(parts) + " |")
    verdicts = []
    for c in cells:
        if c["n"] == 100 and c["m"] == 100_000:
            ratio = c["client_total_mean_s"]["ratio"]
            verdict = "met" if ratio <= CLIENT_RATIO_TARGET else "MISSED"
            verdicts.append(
                f"| client time per Pi, active / semi-honest | {c['dropout']:.0%} | "
                f"{ratio:.2f}x | <= {CLIENT_RATIO_TARGET}x | {verdict} |"
            )
    if verdicts:
        lines += ["", "| figure | dropout | ratio | target | |", "|---|---|---|---|---|", *verdicts]
    return "\n".join(lines) + "\n"


def targets_markdown(rows: list[dict[str, Any]]) -> str:
    """The n = 100, m = 100k rows of this run against the targets, when the grid has them."""
    lines = []
    for label, key, dropouts, limit in TARGETS:
        for r in rows:
            if r["n"] == 100 and r["m"] == 100_000 and r["dropout"] in dropouts:
                verdict = "met" if r[key] <= limit else "MISSED"
                lines.append(
                    f"| {label} | {r['dropout']:.0%} | {r[key]:.3f} | <= {limit} | {verdict} |"
                )
    if not lines:
        return ""
    head = (
        "\nTargets (n = 100, m = 100k)\n\n"
        "| figure | dropout | s | target | |\n|---|---|---|---|---|\n"
    )
    return head + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run the grid, write results.json and results.md, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True, help="directory for the results")
    parser.add_argument("--n", type=int, nargs="+", default=[2, 5, 10, 25, 50, 100])
    parser.add_argument("--m", type=int, nargs="+", default=[25_000, 100_000])
    parser.add_argument("--dropout", type=float, nargs="+", default=[0.0, 0.1, 0.3])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each variant this many times, alternating, and keep each one's fastest "
        "round (a shared machine's load spikes hit one variant, not the comparison)",
    )
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the semi-honest variant (no comparison; half the time)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small grid (n 5 10 25, m 25000, dropout 0 0.3)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.m, args.dropout = [5, 10, 25], [25_000], [0.0, 0.3]
    for p in args.dropout:
        if not 0.0 <= p < 1.0 or not math.isfinite(p):
            parser.error(f"dropout {p} must be in [0, 1)")
    rows: list[dict[str, Any]] = []
    baseline: list[dict[str, Any]] = []
    for n in args.n:
        for m in args.m:
            for p in args.dropout:
                best: dict[bool, dict[str, Any]] = {}
                for _ in range(max(1, args.repeat)):
                    for active in (False, True) if not args.no_baseline else (True,):
                        row = run_round(n, m, p, args.seed, active=active)
                        print(
                            f"n={n} m={m} drop={p:.0%} {row['variant']}: client "
                            f"{row['client_total_mean_s']:.3f} s, server "
                            f"{row['server_total_s']:.2f} s, round {row['round_s']:.2f} s",
                            flush=True,
                        )
                        if active not in best or row["round_s"] < best[active]["round_s"]:
                            best[active] = row
                rows.append(best[True])
                if False in best:
                    baseline.append(best[False])
    compared = comparison(rows, baseline)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "machine": platform.platform(),
        "processor": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "config_defaults": asdict(SecAggConfig(client_ids=(1, 2), vector_lengths=(1,))),
    }
    results = {"meta": meta, "rows": rows, "baseline_rows": baseline, "comparison": compared}
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    table = markdown(rows) + comparison_markdown(compared)
    (args.out / "results.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
