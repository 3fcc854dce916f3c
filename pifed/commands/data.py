"""``pifed data download|info``."""

from __future__ import annotations

import argparse
from pathlib import Path

from model.dataset import default_cache_dir, load_names, resolve_data_dir
from model.download import PUBLIC_URL, download_names
from pifed import flags


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``pifed data download|info``."""
    data = sub.add_parser("data", help="fetch or check the names data set")
    actions = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    dl = actions.add_parser("download", help="download the public data set into the cache")
    dl.add_argument("--out", metavar="DIR", help="where to unpack (default: ~/.cache/pifed/names)")
    dl.add_argument("--url", help="archive URL (default: the tutorial's public data.zip)")
    info = actions.add_parser("info", help="counts of a names folder, after normalisation")
    flags.add_data(info)


def run(args: argparse.Namespace) -> int:
    """Download into the cache (verified by content), or print a folder's counts."""
    if args.data_command == "download":
        dest = Path(args.out) if args.out else default_cache_dir()
        counts = download_names(dest, args.url or PUBLIC_URL)
        print(f"verified {len(counts)} languages, {sum(counts.values())} lines -> {dest}")
        return 0
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
