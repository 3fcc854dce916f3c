"""Liveness, measured: time from a Pi's death (kill -9) to the next completed round, by stage.

Usage:
    uv run python -m benchmarks.experiments.fleet_liveness --devices 3 10 \\
        --stages train secagg evaluate deploy --out /tmp/fleet_liveness

For each fleet size and stage: N real `pifed edge` processes on loopback (TLS, secure
aggregation with the default threshold), a coordinator in this process with the *default*
timeouts (``--silence-timeout`` 10 s, ``--live-window`` 20 s, poll wait 5 s), and a gate that
promotes every round. Pi N-1 runs with ``--fault-hang-in STAGE`` (``secagg``: its first
secure-aggregation task, AdvertiseKeys); once it is stuck (and has heartbeated) it is killed
with kill -9 of its process group. Reported, in seconds after the kill: when the coordinator
gave up on it (``device_gone``, or the session's abort), the first completed round, and the
first completed round without it (N-1 survivors). Writes results.json.

The round time with 10 Pis and the coordinator's peak RSS come from
``benchmarks.suite.fleet_load`` (run it with ``--devices 10 --rounds 1``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "integration"))

from fleet_harness import PROMOTE_ALL, iid_device_folders, started_fleet

from federated.certs import make_certs
from federated.coordinator import FleetConfig
from federated.exporter import init_model
from federated.round_settings import RoundSettings
from model.dataset import NamesDataset, load_names, resolve_data_dir
from pifed.commands.edge import FAULT_KINDS

STAGES = FAULT_KINDS  # the stages a Pi can hang in (pifed edge --fault-hang-in)


def run_drill(
    ds: NamesDataset, out: Path, model: Path, certs: Path, devices: int, stage: str
) -> dict[str, Any]:
    """One drill: the last Pi hangs in ``stage`` and is killed; returns the timings."""
    out.mkdir(parents=True, exist_ok=True)
    folders = iid_device_folders(ds, out, devices)
    # Evaluate and deploy come after the session: the round in progress completes, so a second
    # round shows how soon one runs without the dead Pi.
    rounds = 2 if stage in ("evaluate", "deploy") else 1
    cfg = FleetConfig(  # the default timeouts: the point is the real default behaviour
        rounds=rounds,
        min_devices=2,
        settings=RoundSettings(gate=PROMOTE_ALL),
        wait_devices_timeout=600,
    )
    victim = devices - 1
    hang = {victim: {"hang_in": stage}}
    with started_fleet(out, model, certs, cfg, folders, hang, connect_timeout=600) as fleet:
        runner = fleet.server.run_rounds_in_background()
        fleet.edges[victim].wait_for(lambda e: e.get("event") == "fault_hang", timeout=600)
        time.sleep(1)  # its first heartbeat has landed: the coordinator knows it as busy
        fleet.edges[victim].kill()
        killed = time.monotonic()
        runner.join(timeout=600)
    events = fleet.events

    def first(pred: Any) -> tuple[float, dict[str, Any]] | None:
        return next(((t, e) for t, e in events if t >= killed and pred(e)), None)

    done = first(lambda e: e.get("event") == "round_end")
    gone = first(lambda e: e.get("event") in ("device_gone", "round_failed"))
    if gone and done and gone[0] > done[0]:
        gone = None  # a later round's event: this stage said nothing (it only logs)
    without = first(lambda e: e.get("event") == "round_end" and e.get("survivors") == devices - 1)
    return {
        "devices": devices,
        "stage": stage,
        "gave_up_s": round(gone[0] - killed, 2) if gone else None,
        "gave_up_event": gone[1] if gone else None,
        "next_completed_round_s": round(done[0] - killed, 2) if done else None,
        "next_completed_round": done[1].get("round") if done else None,
        "completed_without_it_s": round(without[0] - killed, 2) if without else None,
        "completed_without_it_round": without[1].get("round") if without else None,
        "rounds": [
            {k: e.get(k) for k in ("event", "round", "devices", "survivors", "reason")}
            for t, e in events
            if e.get("event") in ("round_start", "round_end", "round_failed", "device_gone")
        ],
        "timeouts": {"silence_timeout": cfg.silence_timeout, "live_window": cfg.live_window},
    }


def main() -> int:
    """Run the drills, print a table, write results.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, nargs="+", default=[3, 10])
    ap.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    ap.add_argument("--units", type=int, default=8)
    ap.add_argument("--embed-dim", type=int, default=8)
    ap.add_argument("--data")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="fleet_liveness_"))
    out.mkdir(parents=True, exist_ok=True)
    ds = load_names(resolve_data_dir(args.data))
    certs = make_certs(out / "certs").ca_cert.parent
    model = out / "model"
    init_model(model, ds.languages, units=args.units, embed_dim=args.embed_dim)
    results: list[dict[str, Any]] = []
    for n in args.devices:
        for stage in args.stages:
            t0 = time.perf_counter()
            res = run_drill(ds, out / f"n{n}-{stage}", model, certs, n, stage)
            res["drill_wall_s"] = round(time.perf_counter() - t0, 1)
            results.append(res)
            (out / "results.json").write_text(
                json.dumps(
                    {
                        "model": {"units": args.units, "embed_dim": args.embed_dim},
                        "drills": results,
                    },
                    indent=2,
                    default=str,
                )
            )
            print(
                f"n={n:>2} {stage:>8}: gave up {res['gave_up_s']} s, next completed round "
                f"{res['next_completed_round']} at {res['next_completed_round_s']} s, first "
                f"without it: round {res['completed_without_it_round']} at "
                f"{res['completed_without_it_s']} s",
                flush=True,
            )
    print(f"wrote {out}/results.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
