"""``pifed models`` and ``pifed rollback VERSION``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pifed import flags


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``pifed models --db FILE [--json]`` and ``pifed rollback --db FILE VERSION [--force]``."""
    p = sub.add_parser("models", help="model versions with fleet metrics and deployment status")
    flags.add_db(p)
    flags.add_json(p)
    r = sub.add_parser("rollback", help="push an older, gate-promoted version to the fleet")
    flags.add_db(r)
    r.add_argument("version", type=int, metavar="VERSION")
    r.add_argument("--reason", default="operator rollback", help="recorded with the deployment")
    r.add_argument(
        "--force",
        action="store_true",
        help="deploy a version the gate never promoted (e.g. the untrained initial model)",
    )
    r.set_defaults(module="models")


def run(args: argparse.Namespace) -> int:
    """List versions, or record a rollback deployment (a running coordinator pushes it)."""
    from federated.store import Store, StoreError

    store = Store(args.db, create=False)  # never makes a new, empty fleet of a wrong --db
    try:
        if args.command == "rollback":
            store.rollback(args.version, args.reason, force=args.force)
            print(
                f"version {args.version} is now the fleet's deployed model; devices pick it "
                "up at their next poll"
            )
            return 0
        deployed = store.deployed()
        rows: list[dict[str, Any]] = [
            {
                "version": v.version,
                "parent": v.parent,
                "round": v.round_id,
                "status": v.status,
                "deployed": deployed is not None and deployed.version == v.version,
                "fleet": v.fleet_metrics,
                "gate": v.gate_reason,
            }
            for v in store.versions()
        ]
        if args.json:
            print(json.dumps(rows))
            return 0
        print(f"{'ver':>4} {'round':>5} {'status':<9} {'fleet acc':>9} {'bal acc':>8}  gate")
        for r in rows:
            f: dict = r["fleet"] or {}
            mark = "*" if r["deployed"] else " "
            acc = f"{f['accuracy']:.4f}" if f else "-"
            bal = f"{f['balanced_accuracy']:.4f}" if f else "-"
            print(
                f"{r['version']:>3}{mark} {r['round'] or '-':>5} {r['status']:<9} {acc:>9} "
                f"{bal:>8}  {r['gate'] or ''}"
            )
        print("* deployed")
        return 0
    except StoreError as e:
        print(f"pifed {args.command}: error: {e}", file=sys.stderr)
        return 2
    finally:
        store.close()
