"""``pifed enroll``: a device's token and the authority's certificate for its signing key.

The Pi makes its own signing key (``pifed edge --init-identity`` prints the public key), so the
private key never leaves it. Then, on the coordinator, one of:

- ``pifed enroll NAME --public-key HEX --authority-key KEY``: token on stdout, certificate in
  ``--cert-out`` (default ``NAME.cert``), the authority key read from wherever it is kept;
- ``pifed enroll NAME --public-key HEX --request-out FILE [--authority PUB]``: token on stdout
  and a request for ``pifed authority sign`` on the machine holding the key; then
  ``pifed enroll --import-cert FILE`` stores the certificate;
- ``pifed enroll --revoke NAME``: its token and certificate are refused from now on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pifed import flags


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``pifed enroll --db FILE NAME --public-key HEX (--authority-key K | --request-out F)``,
    ``--import-cert FILE``, ``--revoke NAME``."""
    p = sub.add_parser(
        "enroll", help="enroll a device: token + certificate (or --import-cert, --revoke)"
    )
    flags.add_db(p)
    p.add_argument("name", metavar="NAME", nargs="?", help="device name, e.g. pi-kitchen")
    p.add_argument(
        "--public-key",
        metavar="HEX|FILE",
        help="the public key `pifed edge --init-identity` printed on the Pi (or its device.pub)",
    )
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--authority-key",
        metavar="FILE",
        help="authority.key (mode 600), e.g. on a USB stick: certify now",
    )
    how.add_argument(
        "--request-out",
        metavar="FILE",
        help="write a request for `pifed authority sign` on the machine holding the key",
    )
    how.add_argument(
        "--import-cert", metavar="FILE", help="store a certificate `pifed authority sign` wrote"
    )
    how.add_argument("--revoke", action="store_true", help="revoke NAME's token and certificate")
    p.add_argument(
        "--authority",
        metavar="FILE",
        help="with --request-out: the fleet's authority.pub (needed once, then pinned)",
    )
    p.add_argument(
        "--cert-out",
        metavar="FILE",
        help="with --authority-key: where to write the certificate (default: NAME.cert)",
    )


def _public_key(text: str) -> bytes:
    from edge.device_identity import parse_public_key

    path = Path(text)
    return parse_public_key(path.read_text() if path.is_file() else text)


def run(args: argparse.Namespace) -> int:
    """Print the new token once (it is stored only hashed); certificate paths go to stderr."""
    from edge.device_identity import IdentityError, read_certificate, write_certificate
    from edge.secagg import CertificateError
    from federated.authority import (
        enroll_request,
        enroll_signed,
        load_authority_key,
        load_authority_public,
        write_request,
    )
    from federated.store import Store, StoreError

    def say(text: str) -> None:
        print(text, file=sys.stderr)

    if args.import_cert is None and not args.name:
        say("pifed enroll: error: give the device NAME (or --import-cert FILE)")
        return 2
    if not (args.revoke or args.import_cert) and not args.public_key:
        say(
            "pifed enroll: error: give --public-key HEX: run `pifed edge --init-identity "
            "--identity DIR` on the Pi, which prints it"
        )
        return 2
    if args.public_key and not (args.authority_key or args.request_out):
        say("pifed enroll: error: certify with --authority-key FILE, or --request-out FILE")
        return 2
    store = Store(args.db)
    try:
        if args.revoke:
            store.revoke(args.name)
            say(f"revoked {args.name}: its token and certificate are refused from now on")
        elif args.import_cert:
            device = store.certify(read_certificate(args.import_cert))
            say(f"stored the certificate of {device.name} (id {device.id}): it is active")
        elif args.authority_key:
            key = load_authority_key(args.authority_key)  # before anything is written
            token, cert = enroll_signed(store, args.name, _public_key(args.public_key), key)
            out = write_certificate(args.cert_out or f"{args.name}.cert", cert)
            say(
                f"device {cert.device_id} ({args.name}) enrolled; copy {out} to the Pi as "
                "device.cert beside its device.key, with authority.pub"
            )
            _print_token(token, args.name)
        else:
            pub = load_authority_public(args.authority) if args.authority else None
            token, request = enroll_request(store, args.name, _public_key(args.public_key), pub)
            out = write_request(args.request_out, request)
            say(
                f"device {request.device_id} ({args.name}) is pending until its certificate "
                f"is imported: `pifed authority sign {out} --key authority.key`, then "
                f"`pifed enroll --db {args.db} --import-cert CERT`"
            )
            _print_token(token, args.name)
    except (ValueError, StoreError, IdentityError, CertificateError, OSError) as e:
        say(f"pifed enroll: error: {e}")
        return 2
    finally:
        store.close()
    return 0


def _print_token(token: str, name: str) -> None:
    """The token alone on stdout (so `> NAME.token` captures it), or why there is none."""
    if token:
        print(token)
    else:
        print(f"{name} keeps the token it has", file=sys.stderr)
