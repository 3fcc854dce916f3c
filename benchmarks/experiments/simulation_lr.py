"""Pick the simulation's default learning rates: FedAvg test accuracy per round for each rate.

Usage:
    uv run --frozen python benchmarks/experiments/simulation_lr.py [--clients 2] [--rounds 6]
        [--client-lrs 0.1,0.3,1.0] [--server-lrs 1.0] [--units 128 --embed-dim 64]
        [--out runs/bench-sim/lr.json]

Plain aggregation, iid, client SGD (as on a Pi), one local epoch. To keep the sweep cheap the
per-round accuracy here is the Keras model's on the global test split (no TFLite export; the
float artifact agrees with Keras to 1e-3 in the logits, see `pifed train`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> int:
    """Run the sweep and print one line per (client lr, server lr)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="names folder (default: $PIFED_DATA)")
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--client-lrs", default="0.1,0.3,1.0")
    ap.add_argument("--server-lrs", default="1.0")
    ap.add_argument("--units", type=int, default=128)
    ap.add_argument("--embed-dim", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/bench-sim/lr.json")
    args = ap.parse_args()

    from federated.simulation.backend import execution_backend
    from federated.simulation.data import (
        build_model,
        client_dataset,
        initial_weights,
        prepare_data,
        simulation_model_config,
    )
    from federated.simulation.process import (
        build_fedavg,
        build_optimizer,
        model_aggregator,
        run_round,
        state_weights,
        with_weights,
    )
    from model.dataset import load_names, resolve_data_dir

    ds = load_names(resolve_data_dir(args.data))
    data = prepare_data(ds, args.clients, "iid", args.seed)
    mcfg = simulation_model_config(data, args.units, args.embed_dim)
    w0 = initial_weights(mcfg, args.seed)
    x_test = data.vocab.encode(list(data.test_names))
    results = []
    with execution_backend():
        for server_lr in (float(v) for v in args.server_lrs.split(",")):
            for client_lr in (float(v) for v in args.client_lrs.split(",")):
                process = build_fedavg(
                    mcfg,
                    build_optimizer("sgd", client_lr),
                    build_optimizer("sgd", server_lr),
                    model_aggregator(False),
                )
                state = with_weights(process.initialize(), w0)
                accs, start = [], time.perf_counter()
                for rnd in range(1, args.rounds + 1):
                    datasets = [client_dataset(c, 1, 32, args.seed + rnd) for c in data.clients]
                    state, _ = run_round(process, state, datasets)
                    model = build_model(mcfg, state_weights(state))  # fresh: see build_model
                    pred = np.argmax(model.predict(x_test, batch_size=1024, verbose=0), axis=1)
                    accs.append(round(float(np.mean(pred == data.test_labels)), 4))
                row = {
                    "client_lr": client_lr,
                    "server_lr": server_lr,
                    "test_accuracy_per_round": accs,
                    "best": max(accs),
                    "seconds": round(time.perf_counter() - start, 1),
                }
                print(json.dumps(row), flush=True)
                results.append(row)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
