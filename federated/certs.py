"""``pifed certs``: a private CA and a server certificate for the coordinator's TLS.

Pis pin the CA (``ca.pem``): they trust this coordinator and nothing else, whatever the system
trust store says. Keys are ECDSA P-256; private keys are written with mode 0600.

An existing CA is never replaced: a new one breaks every Pi's pinned ``ca.pem``, so re-issuing
means moving the old folder away on purpose; a lone server key or certificate is refused too
(the coordinator may be using it). Hosts are DNS names (a leading ``*.`` allowed) or IP
addresses, never a port, URL or bracketed address, which no client could match. The server
certificate's names are its SAN (what TLS checks); its subject CN, limited to 64 characters by
X.509, is the first host when it fits.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from model.manifest import write_atomic

DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
_CN_MAX = 64  # X.509's upper bound on a common name
_CN_FALLBACK = "pifed coordinator"


class CertError(ValueError):
    """An operator's mistake in ``pifed certs``: a bad host, or an --out it must not or cannot
    write."""


@dataclass(frozen=True)
class CertPaths:
    """Where ``make_certs`` wrote each file."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _host_problem(h: str) -> str | None:
    """What keeps ``h`` out of a SAN that clients can match (with its fix), or None."""
    name = h[:-1] if h.endswith(".") else h  # a fully qualified name's final dot
    if not name.strip():
        return f"--host {h!r}: give a host name or address"
    if not name.isascii() or any(c.isspace() for c in name):
        return (
            f"--host {h!r}: a host name is ASCII without spaces (an international one in its "
            "xn-- form)"
        )
    if "://" in name:
        host = urlsplit(name).hostname
        as_in = f", as in --host {host}" if host else ""
        return f"--host {h!r}: give the host name, not a URL{as_in}"
    if name.startswith("["):
        inner, _, rest = name[1:].partition("]")
        port = "; the port goes in --listen" if rest.startswith(":") else ""
        return f"--host {h!r}: give the address without brackets, as in --host {inner}{port}"
    if name.count(":") == 1:
        host, _, port = name.partition(":")
        if port.isdigit() or not port:
            return f"--host {h!r}: give the host name alone (the port goes in --listen)"
    if name.count(":") > 1:
        return f"--host {h!r} is not an IP address (an IPv6 one looks like fd00::1)"
    if name.startswith("*."):
        name = name[2:]  # a wildcard certificate for every name under this one
    if "*" in name:
        return f"--host {h!r}: a wildcard is only a leading '*.', as in *.fleet.lan"
    if len(name) > 253 or any(not 1 <= len(label) <= 63 for label in name.split(".")):
        return (
            f"--host {h!r}: a DNS name has at most 253 characters, in dot-separated labels of "
            "1 to 63"
        )
    bad = sorted({c for c in name if not (c.isalnum() or c in "-.")})
    if bad:
        return (
            f"--host {h!r}: a host name has only letters, digits, hyphens and dots "
            f"(not {' '.join(bad)})"
        )
    if any(label.startswith("-") or label.endswith("-") for label in name.split(".")):
        return f"--host {h!r}: a label of a host name cannot start or end with a hyphen"
    if name.rsplit(".", 1)[-1].isdigit():
        return (
            f"--host {h!r} is not an IP address (an IPv4 one is four numbers from 0 to 255, "
            "as in 192.168.1.20)"
        )
    return None


def _check_host(h: str) -> None:
    """A DNS name (optionally ``*.``-prefixed) or an IP address, or CertError naming the fix."""
    try:
        ipaddress.ip_address(h)
        return
    except ValueError:
        pass
    problem = _host_problem(h)
    if problem:
        raise CertError(problem)


def _check_out(d: Path) -> None:
    """``d`` is a folder (or will be) holding none of the four files, or CertError saying what
    to do: a new CA breaks every Pi's pinned ca.pem, and a server key may be in use."""
    for p in (d, *d.parents):
        if p.exists():
            if p.is_dir():
                break
            if p == d:
                raise CertError(f"{d} is a file; give a folder for the certificates (--out)")
            raise CertError(f"{p} is a file, not a folder; give a folder for --out")
    for name in ("ca.key", "ca.pem"):
        if (d / name).exists():
            raise CertError(
                f"{d / name} exists: a new CA breaks every Pi's pinned ca.pem; move the folder "
                "away to replace it"
            )
    for name in ("server.pem", "server.key"):
        if (d / name).exists():
            raise CertError(
                f"{d / name} exists: pifed certs writes all four files afresh and never replaces "
                "one (the coordinator may be using it); move the folder away to replace it"
            )


def _write_error(d: Path, e: OSError) -> CertError:
    """``e`` (from creating or writing in ``d``) as the operator's problem and its fix."""
    if isinstance(e, PermissionError):
        return CertError(
            f"cannot write certificates in {d}: permission denied (run as the user that owns "
            "it, or choose another --out)"
        )
    if isinstance(e, NotADirectoryError):
        try:
            _check_out(d)  # names the file in the way
        except CertError as named:
            return named
    reason = (e.strerror or str(e)).lower()
    return CertError(f"cannot write certificates in {d}: {reason} (choose another --out)")


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
    bad host, an ``out`` that is (or is under) a file, a folder that already holds any of the
    four files, and a folder it cannot write; a failed write leaves none of them behind."""
    if not hosts:
        raise CertError("give at least one host name or address for the server certificate")
    for h in hosts:
        _check_host(h)
    d = Path(out)
    try:
        _check_out(d)
    except OSError as e:  # a parent folder this user cannot search
        raise _write_error(d, e) from e
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
    files = (
        (paths.ca_cert, ca.public_bytes(serialization.Encoding.PEM), False),
        (paths.ca_key, _key_pem(ca_key), True),
        (paths.server_cert, srv.public_bytes(serialization.Encoding.PEM), False),
        (paths.server_key, _key_pem(srv_key), True),
    )
    tried: list[Path] = []
    try:
        d.mkdir(parents=True, exist_ok=True)
        for path, data, private in files:
            tried.append(path)
            write_atomic(path, data)
            if private:
                os.chmod(path, 0o600)
    except OSError as e:
        # None of the four existed (checked above): a partial set would only block the re-run.
        for path in tried:
            path.unlink(missing_ok=True)
        raise _write_error(d, e) from e
    return paths
