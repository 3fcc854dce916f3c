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
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pifed import flags

if TYPE_CHECKING:
    from federated.store import Store


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
        help="the 64-hex public key `pifed edge --init-identity` printed on the Pi (or a file "
        "holding just that line); never its device.key",
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
    """The Pi's public key from --public-key: hex, or a file holding it."""
    from edge.device_identity import IdentityError, parse_public_key, read_device_public_key

    path = Path(text)
    if path.is_file():
        return read_device_public_key(path)
    if path.is_dir():
        raise IdentityError(
            f"--public-key {text} is a folder; pass the 64-hex public key `pifed edge "
            "--init-identity` printed (or a file holding just that line)"
        )
    if any(c in text for c in "/\\.~"):  # hex has none of these: it was meant as a path
        raise IdentityError(
            f"--public-key: file {text} does not exist; pass the 64-hex public key `pifed edge "
            "--init-identity` printed (or a file holding just that line)"
        )
    return parse_public_key(text, "--public-key")


def _usage_error(args: argparse.Namespace) -> str | None:
    """What is wrong with the combination of flags, before anything is read or written."""
    if args.import_cert is None and not args.name:
        return "give the device NAME (or --import-cert FILE)"
    if args.revoke or args.import_cert:
        flag = "--revoke" if args.revoke else "--import-cert"
        for given, other in (
            (args.public_key, "--public-key"),
            (args.cert_out, "--cert-out"),
            (args.authority, "--authority"),
        ):
            if given:
                return f"{other} is not used with {flag}: leave it out"
        return None
    if not args.public_key:
        return (
            "give --public-key HEX: run `pifed edge --init-identity --identity DIR` on the Pi, "
            "which prints it"
        )
    if not (args.authority_key or args.request_out):
        return "certify with --authority-key FILE, or --request-out FILE"
    if args.request_out and args.cert_out:
        return (
            "--cert-out goes with --authority-key; with --request-out the certificate is "
            "written by `pifed authority sign REQUEST --out FILE`"
        )
    if args.authority_key and args.authority:
        return "--authority goes with --request-out; --authority-key already names the authority"
    return None


def run(args: argparse.Namespace) -> int:
    """Print the new token once (it is stored only hashed); certificate paths go to stderr.

    Everything that can be refused is checked, and the output file's place is taken, before
    the store is touched: a failure leaves the fleet as it was, and a re-run works."""
    from edge.device_identity import (
        IdentityError,
        certificate_text,
        check_replaceable,
        read_certificate,
    )
    from edge.secagg import CertificateError
    from federated.authority import (
        check_new_name,
        check_request_replaceable,
        enroll_request,
        enroll_signed,
        load_authority_key,
        load_authority_public,
        request_text,
    )
    from federated.reserved_file import ReservedFile
    from federated.store import Store, StoreError

    def say(text: str) -> None:
        print(text, file=sys.stderr)

    problem = _usage_error(args)
    if problem:
        say(f"pifed enroll: error: {problem}")
        return 2
    try:
        if args.revoke:
            with contextlib.closing(Store(args.db, create=False)) as store:
                store.revoke(args.name)
            say(f"revoked {args.name}: its token and certificate are refused from now on")
            return 0
        if args.import_cert:
            cert = read_certificate(args.import_cert)
            if args.name and args.name != cert.device_name:
                raise IdentityError(
                    f"{args.import_cert} is the certificate of {cert.device_name!r} (device "
                    f"{cert.device_id}), not {args.name!r}: pass {args.name}'s certificate, or "
                    "leave NAME out"
                )
            with contextlib.closing(Store(args.db, create=False)) as store:
                device = store.certify(cert)
            say(f"stored the certificate of {device.name} (id {device.id}): it is active")
            return 0
        check_new_name(args.name)  # before anything is read or written
        with contextlib.closing(Store(args.db)) as store:  # a foreign --db is named first
            public = _public_key(args.public_key)
            if args.authority_key:
                key = load_authority_key(args.authority_key)
                target = Path(args.cert_out or f"{args.name}.cert")
                check_replaceable(
                    target,
                    "certificate",
                    device_name=args.name,
                    device_id=_known_id(store, args.name),
                    authority=key.public,
                )
                with ReservedFile(target) as slot:
                    token, cert = enroll_signed(store, args.name, public, key)
                    out = slot.fill(certificate_text(cert))
                say(
                    f"device {cert.device_id} ({args.name}) enrolled; copy {out} to the Pi as "
                    "device.cert beside its device.key, with authority.pub"
                )
            else:
                pub = load_authority_public(args.authority) if args.authority else None
                target = Path(args.request_out)
                check_request_replaceable(
                    target, args.name, _known_id(store, args.name), pub or store.authority()
                )
                with ReservedFile(target) as slot:
                    token, request = enroll_request(store, args.name, public, pub)
                    out = slot.fill(request_text(request))
                say(
                    f"device {request.device_id} ({args.name}) is pending until its "
                    f"certificate is imported: `pifed authority sign {out} --key "
                    f"authority.key`, then `pifed enroll --db {args.db} --import-cert CERT`"
                )
    except (ValueError, StoreError, IdentityError, CertificateError) as e:
        say(f"pifed enroll: error: {e}")
        return 2
    except OSError as e:
        say(f"pifed enroll: error: {e}; nothing was enrolled: fix the path and run it again")
        return 2
    return _print_token(token, args.name, args.db)


def _known_id(store: Store, name: str) -> int | None:
    """The store's id for ``name`` (None: not enrolled yet, the id comes at registration)."""
    from federated.store import UnknownDevice

    try:
        return store.device(name).id
    except UnknownDevice:
        return None


def _print_token(token: str, name: str, db: str) -> int:
    """The token alone on stdout (so `> NAME.token` captures it), or why there is none."""
    if not token:
        print(f"{name} keeps the token it has", file=sys.stderr)
        return 0
    try:
        print(token, flush=True)
    except OSError as e:
        print(
            f"pifed enroll: error: the token could not be written to stdout ({e.strerror}); "
            f"{name} is enrolled and its file written, but the token is stored only hashed: "
            f"revoke it (`pifed enroll --db {db} --revoke {name}`), then on the Pi move "
            "device.key (and device.cert) out of its identity folder, run `pifed edge "
            "--init-identity --identity DIR` again and enroll the new public key it prints "
            "under a new name",
            file=sys.stderr,
        )
        return 2
    return 0
