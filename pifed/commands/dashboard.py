"""``pifed dashboard --db FILE``: the fleet's web dashboard over a store, read-only (a stopped
fleet, or another machine's copy). A running coordinator serves its own with
``pifed server --dashboard HOST:PORT``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from pifed import flags, oplog

log = logging.getLogger("pifed.dashboard")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``pifed dashboard --db FILE [--dashboard HOST:PORT] [--certs DIR]``."""
    p = sub.add_parser(
        "dashboard",
        help="serve the fleet's web dashboard from a database, read-only",
        formatter_class=flags.DefaultsShown,
    )
    flags.add_db(p)
    p.add_argument(
        "--dashboard",
        metavar="HOST:PORT",
        default="127.0.0.1:8080",
        help="address to serve on (any non-loopback address needs --certs: HTTPS)",
    )
    flags.add_certs(p)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM / Ctrl-C."""
    oplog.setup()
    from federated.dashboard.wiring import start_dashboard

    served = flags.dashboard_from_args(args)  # --certs as a path
    try:
        dash = start_dashboard(args.db, args.dashboard, served.certs)
    except ValueError as e:  # a bad address or missing TLS files: the message names the fix
        print(f"pifed dashboard: error: {e}", file=sys.stderr)
        return 2
    log.info("dashboard (read-only) of %s on %s", args.db, dash.url)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    try:
        done.wait()
    finally:
        dash.close()
    return 0
