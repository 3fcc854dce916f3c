"""``pifed evaluate``: runs on a Pi with a TFLite runtime only."""

from __future__ import annotations

import argparse
import json

from model.dataset import resolve_data_dir
from pifed import flags


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``pifed evaluate``."""
    p = sub.add_parser("evaluate", help="evaluate a .tflite on a names folder (runs on a Pi)")
    flags.add_model(p)
    flags.add_data(p)
    flags.add_json(p)


def run(args: argparse.Namespace) -> int:
    """Evaluate one artifact on every name under --data; --json prints one JSON object."""
    from edge.evaluate import evaluate_dir

    metrics = evaluate_dir(args.model, resolve_data_dir(args.data))
    if args.json:
        print(json.dumps(metrics, sort_keys=True))
        return 0
    print(f"{metrics['model']} ({metrics['kind']}) on {metrics['n']} names")
    for key in ("accuracy", "balanced_accuracy", "macro_f1"):
        print(f"  {key:<18} {metrics[key]:.4f}")
    return 0
