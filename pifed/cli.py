"""``pifed``: one entry point, subcommands, the same flag names everywhere.

Each subcommand's module is imported only when it runs, so the Pi-side commands (``predict``,
``evaluate``, ``data``) work on a Pi that has no TensorFlow installed.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from model.dataset import DATA_ENV, DataError
from model.encoding import VocabError
from model.manifest import ManifestError
from model.partition import PartitionError

EXIT_USAGE = 2


def _add_data(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        metavar="DIR",
        help=f"folder of <Language>.txt files (default: ${DATA_ENV}, then the download cache)",
    )


def _add_seed(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="seed for splits, init and shuffling")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used to render the README's CLI reference)."""
    parser = argparse.ArgumentParser(
        prog="pifed",
        description="Federated learning for fleets of Raspberry Pis: a surname-to-language "
        "GRU, trained where the names live.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    data = sub.add_parser("data", help="fetch or check the names data set")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    dl = data_sub.add_parser("download", help="download the public data set into the cache")
    dl.add_argument("--out", metavar="DIR", help="where to unpack (default: ~/.cache/pifed/names)")
    dl.add_argument("--url", help="archive URL (default: the tutorial's public data.zip)")
    info = data_sub.add_parser("info", help="counts of a names folder, after normalisation")
    _add_data(info)

    tr = sub.add_parser(
        "train",
        help="centralized baseline: train, export TFLite artifacts, evaluate",
        description="Train the GRU on a name-disjoint split, export float/dynamic/int8 and the "
        "on-device training artifact, and check TFLite against Keras.",
    )
    _add_data(tr)
    tr.add_argument("--out", metavar="DIR", required=True, help="run directory to write")
    tr.add_argument("--epochs", type=int, default=20, help="max epochs (early stopping)")
    tr.add_argument("--batch-size", type=int, default=64, help="Keras training batch size")
    tr.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    tr.add_argument("--units", type=int, default=128, help="GRU units per direction")
    tr.add_argument("--embed-dim", type=int, default=64, help="character embedding size")
    tr.add_argument("--unidirectional", action="store_true", help="one GRU direction only")
    tr.add_argument(
        "--class-weight-power",
        type=float,
        default=0.5,
        help="class weights (1/freq)**P: 0 favours accuracy, 1 balanced accuracy",
    )
    _add_seed(tr)

    ev = sub.add_parser("evaluate", help="evaluate a .tflite on a names folder (runs on a Pi)")
    ev.add_argument(
        "--model",
        metavar="FILE.tflite",
        required=True,
        help="an inference artifact; its manifest.json must sit beside it",
    )
    _add_data(ev)
    ev.add_argument("--json", action="store_true", help="print exactly one JSON object")

    pr = sub.add_parser("predict", help="top-3 languages for each name (runs on a Pi)")
    pr.add_argument(
        "--model",
        metavar="FILE.tflite",
        required=True,
        help="an inference artifact; its manifest.json must sit beside it",
    )
    pr.add_argument("--top", type=int, default=3, help="how many languages to show")
    pr.add_argument("--json", action="store_true", help="print exactly one JSON object")
    pr.add_argument("names", nargs="+", metavar="NAME")
    return parser


_KNOWN_ERRORS: tuple[type[BaseException], ...] = (
    DataError,
    ManifestError,
    VocabError,
    PartitionError,
    FileNotFoundError,
    ImportError,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, dispatch to ``pifed.commands.<command>.run``, and turn known errors into exit 2."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    module = importlib.import_module(f"pifed.commands.{args.command}")
    try:
        return int(module.run(args) or 0)
    except _KNOWN_ERRORS as e:
        print(f"pifed {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"pifed {args.command}: interrupted", file=sys.stderr)
        return 130
