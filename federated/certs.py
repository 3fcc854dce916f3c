"""``pifed certs``: a private CA and a server certificate for the coordinator's TLS.

Pis pin the CA (``ca.pem``): they trust this coordinator and nothing else, whatever the system
trust store says. Keys are ECDSA P-256; private keys are written with mode 0600.

An existing CA is never replaced: a new one breaks every Pi's pinned ``ca.pem``, so re-issuing
means moving the old folder away on purpose. The server certificate's names are its SAN (what
TLS checks); its subject CN, limited to 64 characters by X.509, is the first host when it fits.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from model.manifest import write_atomic

DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
_CN_MAX = 64  # X.509's upper bound on a common name
_CN_FALLBACK = "pifed coordinator"


class CertError(ValueError):
    """An operator's mistake in ``pifed certs``: a bad host, or an --out that would lose a CA."""


@dataclass(frozen=True)
class CertPaths:
    """Where ``make_certs`` wrote each file."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_atomic(path, pem)
    os.chmod(path, 0o600)


def _check_host(h: str) -> None:
    """A host name or an IP address the SAN can carry, or CertError naming the fix."""
    try:
        ipaddress.ip_address(h)
        return
    except ValueError:
        pass
    name = h[:-1] if h.endswith(".") else h  # a fully qualified name's final dot
    problem = None
    if not name.strip():
        problem = "give a host name or address"
    elif not name.isascii() or any(c.isspace() for c in name):
        problem = "a host name is ASCII without spaces (an international one in its xn-- form)"
    elif len(name) > 253 or any(not 1 <= len(label) <= 63 for label in name.split(".")):
        problem = "a DNS name has at most 253 characters, in dot-separated labels of 1 to 63"
    if problem:
        raise CertError(f"--host {h!r}: {problem}")


def _check_out(d: Path) -> None:
    """``d`` is a folder (or will be) without a CA in it, or CertError saying what to do."""
    if d.exists() and not d.is_dir():
        raise CertError(f"{d} is a file; give a folder for the certificates (--out)")
    for name in ("ca.key", "ca.pem"):
        if (d / name).exists():
            raise CertError(
                f"{d / name} exists: a new CA breaks every Pi's pinned ca.pem; move the folder "
                "away to replace it"
            )


def _san(hosts: tuple[str, ...]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    return x509.SubjectAlternativeName(names)


def _common_name(hosts: tuple[str, ...]) -> str:
    """The first host when X.509 allows it as a CN; clients match the SAN, which has them all."""
    return hosts[0] if len(hosts[0]) <= _CN_MAX else _CN_FALLBACK


def make_certs(
    out: str | Path,
    hosts: tuple[str, ...] = DEFAULT_HOSTS,
    days: int = 825,
    not_before: dt.datetime | None = None,
) -> CertPaths:
    """Create ``ca.pem``/``ca.key`` and ``server.pem``/``server.key`` valid for ``hosts``, from
    ``not_before`` (default: now, less 5 minutes of clock skew) for ``days``; a past
    ``not_before`` makes expired certificates, for drills and tests. Refuses (CertError) a
    bad host, an ``out`` that is a file, and a folder that already holds a CA."""
    if not hosts:
        raise CertError("give at least one host name or address for the server certificate")
    for h in hosts:
        _check_host(h)
    d = Path(out)
    _check_out(d)
    d.mkdir(parents=True, exist_ok=True)
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pifed fleet CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _common_name(hosts))]))
        .issuer_name(ca_name)
        .public_key(srv_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(_san(hosts), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = CertPaths(d / "ca.pem", d / "ca.key", d / "server.pem", d / "server.key")
    write_atomic(paths.ca_cert, ca.public_bytes(serialization.Encoding.PEM))
    _write_key(paths.ca_key, ca_key)
    write_atomic(paths.server_cert, srv.public_bytes(serialization.Encoding.PEM))
    _write_key(paths.server_key, srv_key)
    return paths
