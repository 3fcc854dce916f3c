"""Flag definitions shared by subcommands: one flag, one name and one help text everywhere."""

from __future__ import annotations

import argparse

from model.dataset import DATA_ENV


def add_data(p: argparse.ArgumentParser) -> None:
    """``--data DIR``: a folder of ``<Language>.txt`` files."""
    p.add_argument(
        "--data",
        metavar="DIR",
        help=f"folder of <Language>.txt files (default: ${DATA_ENV}, then the download cache)",
    )


def add_seed(p: argparse.ArgumentParser) -> None:
    """``--seed N``: every run is reproducible from it."""
    p.add_argument("--seed", type=int, default=0, help="seed for splits, init and shuffling")


def add_out(p: argparse.ArgumentParser, what: str = "run directory to write") -> None:
    """``--out DIR``: where a command writes its results."""
    p.add_argument("--out", metavar="DIR", required=True, help=what)


def add_model(p: argparse.ArgumentParser) -> None:
    """``--model FILE.tflite``: an inference artifact with its manifest beside it."""
    p.add_argument(
        "--model",
        metavar="FILE.tflite",
        required=True,
        help="an inference artifact; its manifest.json must sit beside it",
    )


def add_json(p: argparse.ArgumentParser) -> None:
    """``--json``: machine-readable output."""
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
