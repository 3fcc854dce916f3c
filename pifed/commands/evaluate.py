"""``pifed evaluate``: runs on a Pi with tflite-runtime only."""

from __future__ import annotations

import argparse
import json

from edge.evaluate import evaluate_dir
from model.dataset import resolve_data_dir


def run(args: argparse.Namespace) -> int:
    """Evaluate one artifact on every name under --data; --json prints one JSON object."""
    metrics = evaluate_dir(args.model, resolve_data_dir(args.data))
    if args.json:
        print(json.dumps(metrics, sort_keys=True))
        return 0
    print(f"{metrics['model']} ({metrics['kind']}) on {metrics['n']} names")
    for key in ("accuracy", "balanced_accuracy", "macro_f1"):
        print(f"  {key:<18} {metrics[key]:.4f}")
    return 0
