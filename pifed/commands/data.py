"""``pifed data download|info|split``: fetch, check, or deal the names to a fleet's Pis.

TensorFlow-free: a Pi owner may run any of them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from model.dataset import NamesDataset, default_cache_dir, load_names, resolve_data_dir, write_names
from model.deal import deal_to_devices
from model.download import PUBLIC_URL, download_names
from model.partition import SCHEMES, PartitionError, PartitionScheme
from pifed import flags


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``pifed data download|info|split``."""
    data = sub.add_parser("data", help="fetch or check the names data set")
    actions = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    dl = actions.add_parser("download", help="download the public data set into the cache")
    dl.add_argument("--out", metavar="DIR", help="where to unpack (default: ~/.cache/pifed/names)")
    dl.add_argument("--url", help="archive URL (default: the tutorial's public data.zip)")
    info = actions.add_parser("info", help="counts of a names folder, after normalisation")
    flags.add_data(info)
    split = actions.add_parser(
        "split",
        help="deal a names folder into one folder per Pi (OUT/pi-1, OUT/pi-2, ...)",
        description="Deal the names into one <Language>.txt folder per device, each one a "
        "`pifed edge --data` can use, with the partition schemes of `pifed simulate` and "
        "`pifed demo`. Split by distinct name: no surname is in two folders.",
    )
    flags.add_data(split)
    split.add_argument("--devices", type=int, required=True, metavar="N", help="folders to deal")
    split.add_argument(
        "--partition",
        default="iid",
        metavar="SCHEME",
        help=f"how names are dealt: {', '.join(SCHEMES)} (default iid)",
    )
    split.add_argument(
        "--out", metavar="DIR", required=True, help="new or empty folder; never overwritten"
    )
    split.add_argument(
        "--holdout-frac",
        type=float,
        default=0.0,
        metavar="F",
        help="keep this fraction of the distinct names out of every Pi, in OUT/test_names, "
        "for `pifed evaluate --data` (default 0: every name goes to a Pi)",
    )
    flags.add_seed(split)
    flags.add_json(split)


def run(args: argparse.Namespace) -> int:
    """Download into the cache (verified by content), print a folder's counts, or deal it
    into one folder per Pi."""
    if args.data_command == "download":
        dest = Path(args.out) if args.out else default_cache_dir()
        counts = download_names(dest, args.url or PUBLIC_URL)
        print(f"verified {len(counts)} languages, {sum(counts.values())} lines -> {dest}")
        return 0
    if args.data_command == "split":
        return _split(args)
    ds = load_names(resolve_data_dir(args.data))
    raw = ds.raw_line_counts
    print(f"{'language':<12} {'lines':>6} {'distinct':>8}")
    for lang, n in ds.counts().items():
        print(f"{lang:<12} {raw[lang]:>6} {n:>8}")
    print(
        f"{'total':<12} {sum(raw.values()):>6} {len(ds):>8}  "
        f"({ds.dropped_debris} debris lines dropped, {len(set(ds.names))} distinct names)"
    )
    return 0


def _check_split_args(args: argparse.Namespace) -> Path:
    """Every flag is checked before anything is read or written; the ``--out`` to write."""
    if args.devices < 1:
        raise PartitionError(f"--devices must be at least 1, got {args.devices}")
    PartitionScheme.parse(args.partition)
    if not 0.0 <= args.holdout_frac < 1.0:
        raise PartitionError(
            f"--holdout-frac must be in [0, 1), got {args.holdout_frac}; e.g. 0.2, or 0 for none"
        )
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(
            f"--out {out} already exists and is not empty; pifed data split never overwrites a "
            "folder: choose a new --out, or remove that folder first"
        )
    return out


def _summary(ds: NamesDataset, name: str, rows: Any, path: Path) -> dict[str, Any]:
    counts = ds.subset(rows).counts()
    langs = {lang: n for lang, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n}
    return {"device": name, "path": str(path), "names": len(rows), "languages": langs}


def _split(args: argparse.Namespace) -> int:
    """Deal the names into OUT/pi-1..N (and OUT/test_names with --holdout-frac)."""
    out = _check_split_args(args)
    ds = load_names(resolve_data_dir(args.data))
    deal = deal_to_devices(ds, args.devices, args.partition, args.seed, args.holdout_frac)
    devices = []
    for i, rows in enumerate(deal.devices):
        name = f"pi-{i + 1}"
        devices.append(_summary(ds, name, rows, write_names(ds, rows, out / name)))
    test = None
    if len(deal.test):
        test = _summary(ds, "test_names", deal.test, write_names(ds, deal.test, out / "test_names"))
    if args.json:
        doc = {"partition": args.partition, "seed": args.seed, "devices": devices, "test": test}
        print(json.dumps(doc, indent=2))
        return 0
    for d in [*devices, *([test] if test else [])]:
        top, share = next(iter(d["languages"].items()))
        print(
            f"{d['device']}: {d['names']} names, {len(d['languages'])} languages "
            f"(most: {top} {share / d['names']:.0%}) -> {d['path']}"
        )
    return 0
