"""``pifed devices``: enrolled devices with their last-seen time."""

from __future__ import annotations

import argparse
import time

from pifed import flags


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``pifed devices --db FILE``."""
    p = sub.add_parser("devices", help="list enrolled devices and when they were last seen")
    flags.add_db(p)


def _ago(t: float | None) -> str:
    if t is None:
        return "never"
    s = int(time.time() - t)
    return f"{s} s ago" if s < 120 else f"{s // 60} min ago"


def run(args: argparse.Namespace) -> int:
    """One line per device."""
    from federated.store import Store

    store = Store(args.db, create=False)  # only reads: a wrong --db is exit 2, not a new file
    print(f"{'id':>4}  {'name':<20} {'status':<8} last seen")
    for d in store.devices():
        print(f"{d.id:>4}  {d.name:<20} {d.status:<8} {_ago(d.last_seen)}")
    store.close()
    return 0
