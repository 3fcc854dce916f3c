"""Round suite: the cost of one secure-aggregation round against a plain sum, and round time.

    uv run python benchmarks/bench_round.py --run RUN --out DIR

Runs ``benchmarks/secagg_bench.py --quick`` (another issue's script) as a subprocess when it is
present, and reports, per configuration, the masked round's time and bytes against the
unmasked sum of the same vectors measured in the same run. Simulation and fleet round
times (TFF / ``pifed server``) are reported as not available here -- never estimated.
The ``scaling`` suite (bench_scaling.py) reads the same secagg results, grouped by n.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from suite_contract import suite_parser, write_section

SECAGG_SCRIPT = Path(__file__).resolve().with_name("secagg_bench.py")
SECAGG_ARGS = ("--quick",)
SECAGG_TIMEOUT_S = 900
NOT_YET = "not available yet"
# Scripts of the simulation / fleet issues that measure round time on their own.
SIMULATION_SCRIPTS = ("simulation_targets.py", "fleet_load.py")


def simulation_reason() -> str:
    """Why there is no simulation / fleet round time here, naming where it comes from today."""
    here = SECAGG_SCRIPT.parent
    present = [f"benchmarks/{n}" for n in SIMULATION_SCRIPTS if (here / n).is_file()]
    if present:
        return (
            f"{NOT_YET} in pifed bench: simulation and fleet round times come from "
            f"{' and '.join(present)}, run on their own (not wired into this suite)"
        )
    return f"{NOT_YET}: the TFF simulation and the fleet runtime are still being written"


def secagg_results(out: Path) -> dict[str, Any]:
    """The secagg benchmark's results, run once per ``out`` (the scaling suite reuses them).

    Returns ``{"available": False, "reason": ...}`` when the script is absent or fails, so no
    figure is ever made up.
    """
    if not SECAGG_SCRIPT.is_file():
        return {"available": False, "reason": f"{NOT_YET}: {SECAGG_SCRIPT.name} is not present"}
    target = out / "secagg"
    results = target / "results.json"
    stamp = target / "args.json"
    if not (
        results.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == list(SECAGG_ARGS)
    ):
        target.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, str(SECAGG_SCRIPT), "--out", str(target), *SECAGG_ARGS]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=SECAGG_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return {"available": False, "reason": f"{SECAGG_SCRIPT.name} timed out"}
        (target / "log.txt").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0 or not results.is_file():
            return {
                "available": False,
                "reason": f"{SECAGG_SCRIPT.name} failed (exit {proc.returncode}): "
                f"{proc.stderr.strip()[-500:]}",
            }
        stamp.write_text(json.dumps(list(SECAGG_ARGS)))
    data = json.loads(results.read_text())
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not rows:
        return {"available": False, "reason": f"{results} has no rows (unexpected format)"}
    return {
        "available": True,
        "script": f"benchmarks/{SECAGG_SCRIPT.name}",
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
    section: dict[str, Any] = {
        "secagg": {k: v for k, v in sa.items() if k != "rows"},
        "simulation": {"available": False, "reason": simulation_reason()},
    }
    return section, sa


def main(argv: list[str] | None = None) -> int:
    """Write round.json: secagg round cost if available, simulation round time not yet."""
    args = suite_parser(__doc__).parse_args(argv)
    section, sa = secagg_section(args.out)
    if sa["available"]:
        section["secagg"]["rounds"] = round_rows(sa["rows"])
    write_section(args.out, "round", section)
    print("round: secure aggregation vs a plain sum of the same vectors (one run)")
    if not sa["available"]:
        print(f"  secagg: {sa['reason']}")
    for r in section["secagg"].get("rounds", []):
        ratio = r["round_over_plain_sum"]
        print(
            f"  n={r['n']} m={r['m']} drop={r['dropout']}: round {r['round_s']:.3f} s"
            + (f" ({ratio:,.0f}x the plain sum)" if ratio else "")
        )
    print(f"  simulation round time: {section['simulation']['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
