"""A Pi's long-term identity on disk: its Ed25519 signing key, its certificate, the pinned
enrollment authority.

The key is made on the Pi (``pifed edge --init-identity``) and never leaves it: only its public
key goes to the coordinator, which has the enrollment authority certify it. Were the key made at
enrollment and copied with the token, the machine that enrolls (the coordinator, the party the
actively secure protocol defends against) would hold every Pi's signing key and could sign
AdvertiseKeys as any of them, which is what the signatures exist to rule out.

Files, each one labelled line of text (so a key pasted into the wrong flag is named, not
misread): ``device.key`` (the 32-byte seed, mode 600, refused if others can read it, as ssh
insists for private keys and as ``edge.device_token`` does for the token), ``device.cert`` (the
authority's certificate) and ``authority.pub`` (the authority's public key, pinned as ``--ca``
pins the TLS CA). The primitives are :mod:`edge.secagg.identity`; this module is only the files.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from pathlib import Path

from edge.secagg.errors import CertificateError
from edge.secagg.identity import PUBLIC_KEY_SIZE, DeviceCertificate, Identity, SigningKey

__all__ = [
    "AUTHORITY_KEY_LABEL",
    "AUTHORITY_PUB_LABEL",
    "DEVICE_CERT",
    "DEVICE_KEY",
    "DEVICE_KEY_LABEL",
    "IdentityError",
    "certificate_digest",
    "format_public_key",
    "init_identity",
    "load_identity",
    "parse_public_key",
    "read_certificate",
    "read_public_key",
    "read_secret_key",
    "write_certificate",
    "write_public_key",
    "write_secret_key",
]

DEVICE_KEY = "device.key"
DEVICE_CERT = "device.cert"
AUTHORITY_PUB = "authority.pub"
DEVICE_KEY_LABEL = "pifed-device-key-v1"
AUTHORITY_KEY_LABEL = "pifed-authority-key-v1"
AUTHORITY_PUB_LABEL = "pifed-authority-public-v1"
CERT_LABEL = "pifed-device-certificate-v1"


class IdentityError(ValueError):
    """An identity file is missing, too open, damaged or of the wrong kind; the message names
    the file and the fix."""


def _write_private(path: Path, text: str) -> Path:
    """Write ``text`` readable by its owner only (mode 600), refusing to replace a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise IdentityError(
            f"{path} already exists; a key is never overwritten (move it away first, then "
            "re-enroll with the new public key)"
        ) from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text)
    return path


def _read_line(path: Path, label: str, what: str, fix: str, private: bool = False) -> str:
    """The value of a one-line ``LABEL VALUE`` file (``private``: refused unless mode 600)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise IdentityError(f"{what} {path} does not exist; {fix}") from None
    if not stat.S_ISREG(st.st_mode):
        raise IdentityError(f"{what} {path} is not a regular file")
    if private and st.st_mode & 0o077:
        raise IdentityError(
            f"{what} {path} is readable or writable by other users "
            f"(mode {stat.S_IMODE(st.st_mode):03o}); run `chmod 600 {path}`"
        )
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise IdentityError(f"{what} {path} cannot be read: {e}") from e
    found, _, value = text.partition(" ")
    if found != label or not value or any(c.isspace() for c in value):
        raise IdentityError(
            f"{path} is not a {what} (it should be one line starting {label!r}"
            f"{', it starts ' + repr(found[:40]) if found else ''}); {fix}"
        )
    return value


def write_secret_key(path: str | os.PathLike[str], key: SigningKey, label: str) -> Path:
    """Write a signing key's seed (mode 600, never over an existing file)."""
    return _write_private(Path(path), f"{label} {key.to_bytes().hex()}\n")


def read_secret_key(path: str | os.PathLike[str], label: str, what: str, fix: str) -> SigningKey:
    """A signing key from ``path``; refused when others can read it or it is another kind."""
    value = _read_line(Path(path), label, what, fix, private=True)
    try:
        return SigningKey(bytes.fromhex(value))
    except (ValueError, CertificateError) as e:
        raise IdentityError(f"{what} {path} is damaged ({e}); {fix}") from e


def format_public_key(public: bytes) -> str:
    """The hex form an operator copies (what ``--init-identity`` prints, ``--public-key``
    takes)."""
    return bytes(public).hex()


def parse_public_key(text: str) -> bytes:
    """Parse :func:`format_public_key`; raises IdentityError naming what is wrong."""
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raw = b""
    if len(raw) != PUBLIC_KEY_SIZE:
        raise IdentityError(
            f"a device public key is {2 * PUBLIC_KEY_SIZE} hex digits (what `pifed edge "
            f"--init-identity` printed), got {text.strip()[:80]!r}"
        )
    return raw


def write_public_key(path: str | os.PathLike[str], public: bytes, label: str) -> Path:
    """Write a public key (mode 644: it is no secret)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(f"{label} {format_public_key(public)}\n", encoding="utf-8")
    return p


def read_public_key(path: str | os.PathLike[str], label: str, what: str, fix: str) -> bytes:
    """A public key file written by :func:`write_public_key`."""
    value = _read_line(Path(path), label, what, fix)
    try:
        return parse_public_key(value)
    except IdentityError as e:
        raise IdentityError(f"{what} {path} is damaged ({e}); {fix}") from e


def write_certificate(path: str | os.PathLike[str], cert: DeviceCertificate) -> Path:
    """Write a device certificate (base64 of its canonical bytes; no secret)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(f"{CERT_LABEL} {base64.b64encode(cert.to_bytes()).decode()}\n", "utf-8")
    return p


def read_certificate(path: str | os.PathLike[str]) -> DeviceCertificate:
    """A device certificate file (:func:`write_certificate`)."""
    fix = "copy the certificate `pifed enroll` wrote for this device"
    value = _read_line(Path(path), CERT_LABEL, "device certificate", fix)
    try:
        return DeviceCertificate.from_bytes(base64.b64decode(value, validate=True))
    except (binascii.Error, CertificateError) as e:
        raise IdentityError(f"device certificate {path} is damaged ({e}); {fix}") from e


def parse_certificate(text: str) -> DeviceCertificate:
    """A certificate pasted as text (the one line of a certificate file, as the operator's
    dashboard takes it); raises IdentityError naming what is wrong."""
    label, _, value = text.strip().partition(" ")
    if label != CERT_LABEL or not value:
        raise IdentityError(
            f"a device certificate is one line starting {CERT_LABEL!r} (the file "
            "`pifed authority sign` wrote); paste that whole line"
        )
    try:
        return DeviceCertificate.from_bytes(base64.b64decode(value.strip(), validate=True))
    except (binascii.Error, CertificateError) as e:
        raise IdentityError(f"the pasted device certificate is damaged ({e})") from e


def init_identity(folder: str | os.PathLike[str]) -> SigningKey:
    """Make this Pi's signing key in ``folder``/device.key (mode 600); refuses to replace one.

    The caller prints ``key.public`` for the operator to enroll."""
    key = SigningKey.generate()
    write_secret_key(Path(folder) / DEVICE_KEY, key, DEVICE_KEY_LABEL)
    return key


def load_identity(
    folder: str | os.PathLike[str], authority: str | os.PathLike[str] | None = None
) -> Identity:
    """This Pi's identity: ``folder``/device.key and device.cert, checked against the pinned
    authority public key (``authority``, default ``folder``/authority.pub).

    Raises IdentityError naming the file and the fix: a missing file, a key others can read, a
    certificate another authority signed, or a key and certificate of different enrollments.
    """
    d = Path(folder)
    key = read_secret_key(
        d / DEVICE_KEY,
        DEVICE_KEY_LABEL,
        "device signing key",
        f"run `pifed edge --init-identity --identity {d}` on this Pi and enroll the public key "
        "it prints",
    )
    cert = read_certificate(d / DEVICE_CERT)
    pin = Path(authority) if authority is not None else d / AUTHORITY_PUB
    public = read_public_key(
        pin,
        AUTHORITY_PUB_LABEL,
        "enrollment authority public key",
        "copy the fleet's authority.pub (from `pifed authority init`) to this Pi",
    )
    try:
        return Identity(key, cert, public)
    except CertificateError as e:
        raise IdentityError(f"{d / DEVICE_CERT} with pinned authority {pin}: {e}") from e


def certificate_digest(cert: DeviceCertificate) -> str:
    """The sha256 (hex) of a certificate's bytes: what a Pi's poll names, and the coordinator
    compares with the certificate it stored for the authenticated device."""
    return hashlib.sha256(cert.to_bytes()).hexdigest()
