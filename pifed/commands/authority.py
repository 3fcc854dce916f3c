"""``pifed authority init`` and ``pifed authority sign``: the enrollment authority.

The authority certifies each Pi's signing key (docs: README, "Enrollment"). Its private key can
live off the coordinator: ``init`` on an offline machine or a USB stick, ``sign`` there for each
request ``pifed enroll --request-out`` wrote. The coordinator and the Pis need only
authority.pub.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pifed import flags


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``pifed authority init --out DIR`` / ``pifed authority sign REQUEST --key FILE``."""
    p = sub.add_parser("authority", help="the enrollment authority: make its key, sign requests")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    init = verbs.add_parser("init", help="make authority.key (mode 600) and authority.pub")
    flags.add_out(init, "folder for authority.key and authority.pub (e.g. a USB stick)")
    sign = verbs.add_parser("sign", help="certify a device's key from a `pifed enroll` request")
    sign.add_argument("request", metavar="REQUEST", help="the file `pifed enroll` wrote")
    sign.add_argument("--key", metavar="FILE", required=True, help="authority.key (mode 600)")
    sign.add_argument(
        "--out",
        metavar="FILE",
        help="where to write the certificate (default: REQUEST with .cert for .request)",
    )


def run(args: argparse.Namespace) -> int:
    """Make the authority, or sign one request."""
    from edge.device_identity import IdentityError, format_public_key, write_certificate
    from edge.secagg import CertificateError
    from federated.authority import init_authority, load_authority_key, read_request, sign_request

    try:
        if args.verb == "init":
            paths = init_authority(args.out)
            key = load_authority_key(paths.key)
            print(
                f"wrote {paths.key} (mode 600: keep it off the coordinator if you can) and "
                f"{paths.public} (copy to the coordinator's enrollments and to every Pi); "
                f"authority public key {format_public_key(key.public)}"
            )
            return 0
        request = read_request(args.request)
        key = load_authority_key(args.key)
        cert = sign_request(request, key)
        out = Path(args.out) if args.out else Path(args.request).with_suffix(".cert")
        write_certificate(out, cert, key.public)
        print(
            f"wrote {out}: device {cert.device_id} ({cert.device_name}); import it on the "
            f"coordinator with `pifed enroll --db FILE --import-cert {out}` and copy it to the "
            "Pi as device.cert"
        )
    except (IdentityError, CertificateError) as e:
        print(f"pifed authority: error: {e}", file=sys.stderr)
        return 2
    return 0
