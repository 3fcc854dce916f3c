"""Load: N `pifed edge` processes on loopback run R rounds with secure aggregation over TLS.

Usage:
    uv run python -m benchmarks.suite.fleet_load --devices 50 --rounds 3 --out /tmp/fleet_load

Reports per-round wall time with its stage breakdown, survivors, and the coordinator's peak RSS
(this process hosts the coordinator, TensorFlow included, as `pifed server` would). Each device
holds an iid share of the names; the model is the demo's size unless --units says otherwise.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "integration"))

from fleet_harness import PROMOTE_ALL, enroll_pis, iid_device_folders, start_edges

from federated.certs import make_certs
from federated.coordinator import FleetConfig
from federated.exporter import init_model
from federated.fleet import FleetServer
from federated.round_settings import RoundSettings
from model.dataset import NamesDataset, load_names, resolve_data_dir


def run_fleet(
    ds: NamesDataset, out: Path, devices: int, rounds: int, units: int, embed_dim: int
) -> dict[str, Any]:
    """``devices`` real `pifed edge` processes and a coordinator in this process, for ``rounds``.

    Each device holds an iid share of the training names (its own 20% held out); TLS and
    secure aggregation as in production, and a gate that promotes every round (so deploy time
    is measured too). Returns the round summaries, the wall time and this process's peak RSS.
    """
    certs = make_certs(out / "certs").ca_cert.parent
    init_model(out / "model", ds.languages, units=units, embed_dim=embed_dim)
    tokens, _ = enroll_pis(out, [f"pi-{i}" for i in range(devices)])
    cfg = FleetConfig(
        rounds=rounds,
        min_devices=devices,
        settings=RoundSettings(gate=PROMOTE_ALL),
        stage_timeout=120,
        train_timeout=900,
        wait_devices_timeout=600,
    )
    fleet = FleetServer.start(out / "fleet.db", out / "model", cfg, "127.0.0.1:0", certs)
    edges = []
    try:
        t0 = time.perf_counter()
        folders = iid_device_folders(ds, out, devices)
        edges = start_edges(fleet.port, tokens, folders, out, certs / "ca.pem")
        summaries = fleet.coordinator.run()
        wall = time.perf_counter() - t0
    finally:
        for e in edges:
            e.stop()
        fleet.close()
    return {
        "devices": devices,
        "rounds": summaries,
        "wall_seconds": wall,
        "coordinator_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "model": {"units": units, "embed_dim": embed_dim},
    }


def main() -> int:
    """Run the fleet, print a table, write results.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--units", type=int, default=64)
    ap.add_argument("--embed-dim", type=int, default=32)
    ap.add_argument("--data")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="fleet_load_"))
    out.mkdir(parents=True, exist_ok=True)
    ds = load_names(resolve_data_dir(args.data))
    res = run_fleet(ds, out, args.devices, args.rounds, args.units, args.embed_dim)
    summaries, wall, peak_mb = res["rounds"], res["wall_seconds"], res["coordinator_peak_rss_mb"]
    (out / "results.json").write_text(json.dumps(res, indent=2, default=str))
    print(f"{args.devices} devices, {args.rounds} rounds, TLS + secure aggregation")
    print(
        f"{'round':>5} {'ok':>3} {'survivors':>9} {'total s':>8} {'secagg s':>9} "
        f"{'export s':>8} {'eval s':>7} {'fleet acc':>9}"
    )
    for s in summaries:
        t = s.get("timings", {})
        sa = sum(v for k, v in t.items() if k.startswith("secagg"))
        acc = s.get("fleet", {}).get("accuracy")
        print(
            f"{s.get('round', '-'):>5} {'y' if s['ok'] else 'n':>3} "
            f"{s.get('survivors', '-'):>9} {t.get('total', float('nan')):>8.1f} {sa:>9.1f} "
            f"{t.get('export', float('nan')):>8.1f} {t.get('evaluate', float('nan')):>7.1f} "
            f"{acc if acc is not None else float('nan'):>9.4f}"
        )
    print(f"coordinator peak RSS {peak_mb:.0f} MB; wall {wall:.0f} s (incl. edge start-up)")
    print(f"wrote {out}/results.json")
    return 0 if all(s["ok"] for s in summaries) else 1


if __name__ == "__main__":
    raise SystemExit(main())
