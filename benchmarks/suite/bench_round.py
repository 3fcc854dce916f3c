"""Round suite: the cost of one fleet round, stage by stage, and of secure aggregation.

    uv run python -m benchmarks.suite.bench_round --run RUN --out DIR [--data DIR]

- **Fleet round** (needs the names data): real `pifed edge` processes on loopback, TLS and
  secure aggregation, a coordinator in this process (``benchmarks.suite.fleet_load``
  ``run_fleet``), the shipped model's size (GRU-128, embedding 64; ``--quick``: 2 devices, 1
  round, GRU-16). Each round's wall time is split into local training (the slowest device's
  own report), key agreement, masking + upload, unmasking + aggregation, export, on-device
  evaluation and deploy, from the coordinator's stage timings. The fleet has no plain
  (unmasked) mode, by design; the secure-aggregation stages beyond training bound its
  overhead over a plain round from above (they also hold each Pi's task setup), which would
  still upload one update per device and sum them.
- **Secure aggregation against a plain sum**: runs ``benchmarks.suite.secagg_bench --quick`` and
  reports, per configuration, the masked round's time and bytes against the unmasked sum of
  the same vectors measured in the same run.

Simulation round time against the number of clients is in the scaling suite.
The ``scaling`` suite (bench_scaling) reads the same secagg results, grouped by n.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.suite.contract import module_command, module_env, suite_parser, write_section

SECAGG_MODULE = "secagg_bench"
SECAGG_ARGS = ("--quick",)
SECAGG_TIMEOUT_S = 900
# The shipped model's size (ModelConfig defaults), a few devices, two rounds: the first
# round includes TensorFlow's tracing of the coordinator's export.
FLEET_FULL = {"devices": 3, "rounds": 2, "units": 128, "embed_dim": 64}
FLEET_QUICK = {"devices": 2, "rounds": 1, "units": 16, "embed_dim": 8}


def fleet_breakdown(timings: dict[str, float]) -> dict[str, float | None]:
    """One round's wall time by stage, from the coordinator's timings (seconds).

    ``secagg_advertise_keys`` runs from handing out the training task to the last key
    advertisement, so it holds the devices' training; the slowest device's own training
    time is taken out of it and reported as ``train_s``. What is left of it
    (``setup_and_keys_s``, with ShareKeys) also holds each Pi's download of the weights and
    the train file and its interpreter start, not only key agreement: ``secagg_at_most_s``
    is therefore an upper bound on what secure aggregation costs.
    """
    train = timings.get("device_train_max")
    advertise = timings.get("secagg_advertise_keys")
    share = timings.get("secagg_share_keys")
    keys = None
    if advertise is not None and train is not None and share is not None:
        keys = advertise - train + share
    stages = {
        "train_s": train,
        "setup_and_keys_s": keys,
        "mask_upload_s": timings.get("secagg_masked_input_collection"),
        "unmask_aggregate_s": timings.get("secagg_unmasking"),
        "export_s": timings.get("export"),
        "evaluate_s": timings.get("evaluate"),
        "deploy_s": timings.get("deploy"),
        "total_s": timings.get("total"),
    }
    parts = [stages["setup_and_keys_s"], stages["mask_upload_s"], stages["unmask_aggregate_s"]]
    secagg = sum(p for p in parts if p is not None) if None not in parts else None
    total = stages["total_s"]
    stages["secagg_at_most_s"] = secagg
    stages["secagg_at_most_share"] = secagg / total if secagg is not None and total else None
    return stages


def fleet_section(out: Path, data: str | None, quick: bool) -> dict[str, Any]:
    """Run a small real fleet and break its rounds down; unavailable without the names data."""
    from model.dataset import DataError, load_names, resolve_data_dir

    try:
        ds = load_names(resolve_data_dir(data))
    except DataError as e:
        return {"available": False, "reason": f"needs the names data (--data): {e}"}
    plan = FLEET_QUICK if quick else FLEET_FULL
    try:
        # The coordinator's side (TensorFlow, cryptography) and the test harness's edges.
        from benchmarks.suite.fleet_load import run_fleet

        res = run_fleet(ds, out / "fleet", **plan)
    except Exception as e:  # reported, never estimated; the secagg results stay
        return {"available": False, "reason": f"the fleet round failed: {type(e).__name__}: {e}"}
    rounds = [
        {"round": s.get("round"), "ok": s["ok"], **fleet_breakdown(s.get("timings", {}))}
        for s in res["rounds"]
    ]
    failed = [s.get("reason") for s in res["rounds"] if not s["ok"]]
    return {
        "available": not failed,
        "reason": f"a round failed: {failed[0]}" if failed else None,
        **plan,
        "wall_seconds": res["wall_seconds"],
        "coordinator_peak_rss_mb": res["coordinator_peak_rss_mb"],
        "rounds": rounds,
    }


def secagg_results(out: Path) -> dict[str, Any]:
    """The secagg benchmark's results, run once per ``out`` (the scaling suite reuses them).

    Returns ``{"available": False, "reason": ...}`` when the benchmark fails or times out, so
    no figure is ever made up.
    """
    target = out / "secagg"
    results = target / "results.json"
    stamp = target / "args.json"
    if not (
        results.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == list(SECAGG_ARGS)
    ):
        target.mkdir(parents=True, exist_ok=True)
        cmd = module_command(SECAGG_MODULE, "--out", str(target), *SECAGG_ARGS)
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=SECAGG_TIMEOUT_S, env=module_env()
            )
        except subprocess.TimeoutExpired:
            return {"available": False, "reason": f"{SECAGG_MODULE} timed out"}
        (target / "log.txt").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0 or not results.is_file():
            return {
                "available": False,
                "reason": f"{SECAGG_MODULE} failed (exit {proc.returncode}): "
                f"{proc.stderr.strip()[-500:]}",
            }
        stamp.write_text(json.dumps(list(SECAGG_ARGS)))
    data = json.loads(results.read_text())
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not rows:
        return {"available": False, "reason": f"{results} has no rows (unexpected format)"}
    return {
        "available": True,
        "script": f"benchmarks/suite/{SECAGG_MODULE}.py",
        "args": list(SECAGG_ARGS),
        "results": str(results),
        "rows": rows,
    }


def _ratio(a: Any, b: Any) -> float | None:
    try:
        return float(a) / float(b) if float(b) > 0 else None
    except (TypeError, ValueError):
        return None


def round_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per configuration: masked vs plain time and bytes (missing fields stay None)."""
    out = []
    for r in rows:
        out.append(
            {
                "n": r.get("n"),
                "m": r.get("m"),
                "dropout": r.get("dropout"),
                "round_s": r.get("round_s"),
                "plain_sum_s": r.get("plain_sum_s"),
                "round_over_plain_sum": _ratio(r.get("round_s"), r.get("plain_sum_s")),
                "client_s": r.get("client_total_mean_s"),
                "plain_client_s": r.get("plain_client_s"),
                "client_over_plain": _ratio(r.get("client_total_mean_s"), r.get("plain_client_s")),
                "server_s": r.get("server_total_s"),
                "bytes_sent_per_client": r.get("bytes_sent_per_client"),
                "plain_bytes_sent_per_client": r.get("plain_bytes_sent_per_client"),
                "bytes_over_plain": _ratio(
                    r.get("bytes_sent_per_client"), r.get("plain_bytes_sent_per_client")
                ),
            }
        )
    return out


def secagg_section(out: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The section both secagg suites start from (no raw rows), and the secagg results."""
    sa = secagg_results(out)
    return {"secagg": {k: v for k, v in sa.items() if k != "rows"}}, sa


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def main(argv: list[str] | None = None) -> int:
    """Write round.json: a fleet round by stage, and secagg against a plain sum."""
    args = suite_parser(__doc__).parse_args(argv)
    section, sa = secagg_section(args.out)
    if sa["available"]:
        section["secagg"]["rounds"] = round_rows(sa["rows"])
    section["fleet"] = fleet_section(args.out, args.data, args.quick)
    write_section(args.out, "round", section)
    fleet = section["fleet"]
    if "rounds" in fleet:
        print(
            f"round: a fleet of {fleet['devices']} edge processes, GRU-{fleet['units']}, TLS and "
            "secure aggregation, seconds by stage"
        )
        for r in fleet["rounds"]:
            print(
                f"  round {r['round']}: train {_s(r['train_s'])}, setup+keys "
                f"{_s(r['setup_and_keys_s'])}"
                f", mask+upload {_s(r['mask_upload_s'])}, unmask+sum "
                f"{_s(r['unmask_aggregate_s'])}, export {_s(r['export_s'])}, evaluate "
                f"{_s(r['evaluate_s'])}, deploy {_s(r['deploy_s'])}; total {_s(r['total_s'])}"
                f"; secure aggregation at most {_s(r['secagg_at_most_s'])}"
            )
    if not fleet["available"]:
        print(f"  fleet: {fleet['reason']}")
    print("round: secure aggregation vs a plain sum of the same vectors (one run)")
    if not sa["available"]:
        print(f"  secagg: {sa['reason']}")
    for r in section["secagg"].get("rounds", []):
        ratio = r["round_over_plain_sum"]
        print(
            f"  n={r['n']} m={r['m']} drop={r['dropout']}: round {r['round_s']:.3f} s"
            + (f" ({ratio:,.0f}x the plain sum)" if ratio else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
