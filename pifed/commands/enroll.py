"""``pifed enroll NAME`` and ``pifed revoke NAME``: device tokens."""

from __future__ import annotations

import argparse
import sys

from pifed import flags


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``pifed enroll --db FILE NAME [--revoke]``."""
    p = sub.add_parser("enroll", help="issue a device token (or --revoke one)")
    flags.add_db(p)
    p.add_argument("name", metavar="NAME", help="device name, e.g. pi-kitchen")
    p.add_argument("--revoke", action="store_true", help="revoke NAME's token instead")


def run(args: argparse.Namespace) -> int:
    """Print the new token once (it is stored only hashed)."""
    from federated.store import Store, StoreError

    store = Store(args.db)
    try:
        if args.revoke:
            store.revoke(args.name)
            print(f"revoked {args.name}")
        else:
            print(store.enroll(args.name))
    except (ValueError, StoreError) as e:
        print(f"pifed enroll: error: {e}", file=sys.stderr)
        return 2
    finally:
        store.close()
    return 0
