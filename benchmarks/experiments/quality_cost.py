"""The fleet quality's cost, measured: the evaluate stage with and without its quality session.

Usage:
    uv run python -m benchmarks.experiments.quality_cost --devices 3 --rounds 6

One fleet of N real `pifed edge` processes on loopback (TLS, actively secure aggregation), a
coordinator in this process and a gate that promotes every round. Rounds alternate between the
evaluate stage with the quality session (issue 22: a second secure-aggregation session over
each Pi's L x L confusion counts) and without it (``FleetConfig.fleet_quality=False``), so both
see the same machine load; the first round of each is a warm-up (the Pis fetch and load the
candidate's model either way). Printed: each variant's median evaluate-stage seconds and round
seconds, their difference (the quality session's added time per round), and the session's own
stage timings. Writes results.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "integration"))

from fleet_harness import PROMOTE_ALL, device_folders, started_fleet

from federated.certs import make_certs
from federated.coordinator import FleetConfig
from federated.exporter import init_model
from federated.round_settings import RoundSettings
from model.dataset import load_names, resolve_data_dir


def main() -> int:
    """Run the alternating rounds; print the table and write results.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=6, help="rounds per variant (first: warm-up)")
    ap.add_argument("--per-device", type=int, default=400, help="names per Pi")
    ap.add_argument("--data")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="quality_cost_"))
    out.mkdir(parents=True, exist_ok=True)
    ds = load_names(resolve_data_dir(args.data))
    model = out / "init-model"
    init_model(model, ds.languages, seed=0, units=8, embed_dim=8, bidirectional=False)
    certs = make_certs(out / "certs").ca_cert.parent
    cfg = FleetConfig(
        rounds=2 * args.rounds,
        min_devices=args.devices,
        settings=RoundSettings(
            local_epochs=1,
            gate=PROMOTE_ALL,
        ),
        poll_wait=1.0,
        wait_devices_timeout=600,
    )
    folders = device_folders(ds, out, args.devices, per_device=args.per_device)
    rows: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    with started_fleet(out, model, certs, cfg, folders, connect_timeout=600) as fleet:
        runner = fleet.server.coordinator.runner
        for i in range(2 * args.rounds):
            on = i % 2 == 0
            runner.cfg = dataclasses.replace(cfg, fleet_quality=on)
            t = time.perf_counter()
            summary = fleet.server.coordinator.run_round()
            if not summary.get("ok"):
                raise RuntimeError(f"round failed: {summary}")
            timings = summary["timings"]
            rows[on].append({"round_s": time.perf_counter() - t, **timings})
            print(
                f"round {summary['round']}: quality {'on ' if on else 'off'} "
                f"evaluate {timings['evaluate']:.3f} s, round {timings['total']:.2f} s",
                flush=True,
            )

    def med(on: bool, key: str) -> float:
        return statistics.median(r[key] for r in rows[on][1:] if key in r)

    quality_keys = sorted({k for r in rows[True] for k in r if k.startswith("evaluate_secagg")})
    result = {
        "devices": args.devices,
        "rounds_per_variant": args.rounds,
        "evaluate_s": {"on": med(True, "evaluate"), "off": med(False, "evaluate")},
        "round_s": {"on": med(True, "total"), "off": med(False, "total")},
        "quality_stages_s": {k: med(True, k) for k in quality_keys},
    }
    added = result["evaluate_s"]["on"] - result["evaluate_s"]["off"]
    result["added_per_round_s"] = added
    result["added_share_of_round"] = added / result["round_s"]["off"]
    print(json.dumps(result, indent=2))
    (out / "results.json").write_text(json.dumps({**result, "rows": rows}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
