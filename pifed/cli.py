"""``pifed``: one entry point, subcommands, the same flag names everywhere.

Each subcommand is a module in ``pifed.commands`` with ``add_parser(subparsers)`` and
``run(args) -> int``. Command modules import only the standard library and TF-free pifed code at
top level; anything heavy (TensorFlow, TFF, rich, matplotlib) is imported inside ``run``. That is
what lets ``pifed predict``, ``evaluate`` and ``data`` work on a Pi without TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from federated.store import StoreError
from model.dataset import DataError
from model.encoding import VocabError
from model.manifest import ManifestError
from model.partition import PartitionError
from pifed.flags import FleetFlagError

EXIT_USAGE = 2
# Order is the order `pifed --help` lists them in.
COMMANDS = (
    "data",
    "train",
    "evaluate",
    "predict",
    "simulate",
    "certs",
    "authority",
    "enroll",
    "devices",
    "server",
    "edge",
    "models",
    "dashboard",
    "demo",
    "bench",
)


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"pifed.commands.{name}")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used to render the README's CLI reference)."""
    parser = argparse.ArgumentParser(
        prog="pifed",
        description="Federated learning for fleets of Raspberry Pis: a surname-to-language "
        "GRU, trained where the names live.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        _module(name).add_parser(sub)
    return parser


_KNOWN_ERRORS: tuple[type[BaseException], ...] = (
    DataError,
    ManifestError,
    VocabError,
    PartitionError,
    FleetFlagError,
    StoreError,  # a missing, foreign or damaged fleet database or blob
    OSError,  # missing files, permissions, a port in use, a failed setup step
    ImportError,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, dispatch to ``pifed.commands.<command>.run``, and turn known errors into exit 2."""
    raw = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(raw)
    args.argv = raw  # the command line as given: `pifed edge` re-runs it as its worker
    # The coordinator's log is for operators: TensorFlow's C++ start-up lines (CUDA factory
    # registration "errors" on a CPU machine among them) are not theirs to read.
    os.environ.setdefault(
        "TF_CPP_MIN_LOG_LEVEL", "3" if args.command in ("server", "demo") else "2"
    )
    try:
        # A module may register several subcommands; it names itself in `module`.
        return int(_module(getattr(args, "module", args.command)).run(args) or 0)
    except _KNOWN_ERRORS as e:
        print(f"pifed {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"pifed {args.command}: interrupted", file=sys.stderr)
        return 130
