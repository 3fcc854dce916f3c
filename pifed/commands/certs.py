"""``pifed certs``: a CA and a server certificate for the coordinator."""

from __future__ import annotations

import argparse
import sys

from pifed import flags


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``pifed certs --out DIR [--host H ...]``."""
    p = sub.add_parser("certs", help="make a CA and a TLS server certificate (coordinator)")
    flags.add_out(p, "folder for ca.pem, ca.key, server.pem, server.key")
    p.add_argument(
        "--host",
        action="append",
        metavar="NAME",
        help="host name (or *.domain) or IP address Pis use to reach the coordinator, "
        "without a port or brackets (repeatable; default: localhost, 127.0.0.1, ::1)",
    )


def run(args: argparse.Namespace) -> int:
    """Write the four PEM files; Pis get only ca.pem. Never over any existing one."""
    from federated.certs import DEFAULT_HOSTS, CertError, make_certs

    try:
        paths = make_certs(args.out, tuple(args.host) if args.host else DEFAULT_HOSTS)
    except CertError as e:
        print(f"pifed certs: error: {e}", file=sys.stderr)
        return 2
    print(
        f"wrote {paths.ca_cert} (copy to every Pi) and {paths.server_cert}, "
        f"{paths.server_key} (coordinator only)"
    )
    return 0
