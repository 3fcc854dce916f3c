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

from edge.secagg.errors import BadSignature, CertificateError
from edge.secagg.identity import (
    PUBLIC_KEY_SIZE,
    DeviceCertificate,
    Identity,
    SigningKey,
    check_certifiable_key,
    verify_signature,
)

__all__ = [
    "AUTHORITY_KEY_LABEL",
    "AUTHORITY_PUB_LABEL",
    "DEVICE_CERT",
    "DEVICE_KEY",
    "DEVICE_KEY_LABEL",
    "IdentityError",
    "certificate_digest",
    "certificate_text",
    "check_replaceable",
    "describe_label",
    "format_public_key",
    "init_identity",
    "load_identity",
    "parse_public_key",
    "read_certificate",
    "read_device_public_key",
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
# What each labelled file is, so a file passed to the wrong flag is named, not misread.
_LABELS = {
    DEVICE_KEY_LABEL: "a Pi's PRIVATE signing key (device.key)",
    AUTHORITY_KEY_LABEL: "the enrollment authority's PRIVATE key (authority.key)",
    AUTHORITY_PUB_LABEL: "the enrollment authority's PUBLIC key (authority.pub)",
    CERT_LABEL: "a device certificate",
}
PRIVATE_LABELS = (DEVICE_KEY_LABEL, AUTHORITY_KEY_LABEL)


class IdentityError(ValueError):
    """An identity file is missing, too open, damaged or of the wrong kind; the message names
    the file and the fix."""


def _write_private(path: Path, text: str) -> Path:
    """Write ``text`` readable by its owner only (mode 600), refusing to replace a file."""
    _make_folder(path.parent)
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


def _make_folder(folder: Path) -> None:
    """``folder`` and its parents, or IdentityError when a file is in the way."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise IdentityError(f"{folder} is a file; give a folder") from None


def describe_label(text: str) -> str | None:
    """What a labelled pifed line is (e.g. "a Pi's PRIVATE signing key (device.key)"), or
    None for text that starts with no label of this module."""
    return _LABELS.get(text.strip().partition(" ")[0])


def _read_text(path: Path, what: str, fix: str) -> str:
    """A small file's text; IdentityError naming the file and the fix for binary content."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise IdentityError(f"{what} {path} is not text (binary or damaged); {fix}") from None
    except OSError as e:
        raise IdentityError(f"{what} {path} cannot be read ({e.strerror}); {fix}") from e


def _read_line(path: Path, label: str, what: str, fix: str, private: bool = False) -> str:
    """The value of a one-line ``LABEL VALUE`` file (``private``: refused unless mode 600).

    The label is checked before the mode, so a public key passed for a private one is named
    as such rather than answered with a chmod."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise IdentityError(f"{what} {path} does not exist; {fix}") from None
    if not stat.S_ISREG(st.st_mode):
        raise IdentityError(f"{what} {path} is not a regular file; {fix}")
    text = _read_text(path, what, fix).strip()
    found, _, value = text.partition(" ")
    if found != label or not value or any(c.isspace() for c in value):
        kind = _LABELS.get(found)
        if kind is not None and found != label:
            raise IdentityError(
                f"{path} is {kind}, not the {what} (it should be one line starting "
                f"{label!r}); {fix}"
            )
        # Echo the start only when it is a word, never a key-like run of hex digits.
        shown = (
            found[:40] if found and not all(c in "0123456789abcdefABCDEF" for c in found) else ""
        )
        raise IdentityError(
            f"{path} is not a {what} (it should be one line starting {label!r}"
            f"{', it starts ' + repr(shown) if shown else ''}); {fix}"
        )
    if private and st.st_mode & 0o077:
        raise IdentityError(
            f"{what} {path} is readable or writable by other users "
            f"(mode {stat.S_IMODE(st.st_mode):03o}); run `chmod 600 {path}`"
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


def parse_public_key(text: str, source: str = "that") -> bytes:
    """Parse :func:`format_public_key`; raises IdentityError naming what is wrong. Text that
    is a private key is named as such and never echoed."""
    wanted = (
        f"pass the {2 * PUBLIC_KEY_SIZE}-hex public key `pifed edge --init-identity` printed "
        "on the Pi"
    )
    label = text.strip().partition(" ")[0]
    if label in PRIVATE_LABELS:
        where = "the Pi" if label == DEVICE_KEY_LABEL else "the authority's machine or stick"
        raise IdentityError(
            f"{source} is {_LABELS[label]}, which must never leave {where}; {wanted}"
        )
    if label in _LABELS:
        raise IdentityError(f"{source} is {_LABELS[label]}, not a device public key; {wanted}")
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raw = b""
    if len(raw) != PUBLIC_KEY_SIZE:
        raise IdentityError(
            f"a device public key is {2 * PUBLIC_KEY_SIZE} hex digits (what `pifed edge "
            f"--init-identity` printed), got {text.strip()[:80]!r}"
        )
    return check_device_public_key(raw, source)


def check_device_public_key(raw: bytes, source: str = "that") -> bytes:
    """``raw`` if it is an Ed25519 public key a certificate can carry; else IdentityError.
    64 hex digits can still be no point on the curve (a typo), or a small-order point anyone
    can sign for: caught here, before a device is registered, not when the certificate is
    signed."""
    try:
        check_certifiable_key(raw)
    except BadSignature as e:
        if "small-order" in str(e):
            why = "a small-order point, which anyone can sign for: never a Pi's key"
        else:
            why = "no point on the curve: a typo?"
        raise IdentityError(
            f"{source} is not a valid Ed25519 public key (64 hex digits, but {why}); copy the "
            "key `pifed edge --init-identity` printed on the Pi again"
        ) from None
    return bytes(raw)


def read_device_public_key(path: str | os.PathLike[str]) -> bytes:
    """A Pi's public key from a file holding the hex `pifed edge --init-identity` printed."""
    p = Path(path)
    fix = (
        f"pass the {2 * PUBLIC_KEY_SIZE}-hex public key `pifed edge --init-identity` printed "
        "(or a file holding just that line)"
    )
    return parse_public_key(_read_text(p, "public key file", fix), str(p))


def write_public_key(path: str | os.PathLike[str], public: bytes, label: str) -> Path:
    """Write a public key (mode 644: it is no secret)."""
    p = Path(path)
    _make_folder(p.parent)
    p.write_text(f"{label} {format_public_key(public)}\n", encoding="utf-8")
    return p


def read_public_key(path: str | os.PathLike[str], label: str, what: str, fix: str) -> bytes:
    """A public key file written by :func:`write_public_key`."""
    value = _read_line(Path(path), label, what, fix)
    try:
        return parse_public_key(value)
    except IdentityError as e:
        raise IdentityError(f"{what} {path} is damaged ({e}); {fix}") from e


def certificate_text(cert: DeviceCertificate) -> str:
    """A certificate file's one line (base64 of its canonical bytes; no secret)."""
    return f"{CERT_LABEL} {base64.b64encode(cert.to_bytes()).decode()}\n"


def check_replaceable(
    path: str | os.PathLike[str],
    what: str,
    is_own: bool | None = None,
    *,
    device_name: str | None = None,
    device_id: int | None = None,
    authority: bytes | None = None,
) -> None:
    """Raise unless ``path`` is free or holds a ``what`` file pifed may replace: a folder,
    a key or any other file in the way is refused (an ``--out`` mistyped onto device.key must
    not destroy the key). ``is_own``: the caller's verdict on the existing file; by default,
    whether it is a device certificate. ``device_name``/``device_id``/``authority``: the device
    (and issuing authority) the new certificate is for; a certificate of another device, or
    one another authority signed, is refused too (a mistyped ``--cert-out`` would replace a
    certified Pi's certificate, and a certified device cannot be issued a new one)."""
    p = Path(path)
    if p.is_dir():
        raise IdentityError(f"{p} is a folder; give a file name for the {what}")
    if not p.exists():
        return
    try:
        head = p.read_text(encoding="utf-8")[:200]
    except (OSError, UnicodeDecodeError):
        head = ""
    own = is_own if is_own is not None else head.partition(" ")[0] == CERT_LABEL
    if not own:
        kind = describe_label(head) or f"a file that is not a pifed {what}"
        raise IdentityError(
            f"{p} holds {kind}; refusing to overwrite it: give another file name for the {what}"
        )
    if is_own is None and (device_name, device_id, authority) != (None, None, None):
        _check_same_device(p, device_name, device_id, authority)


def _check_same_device(
    p: Path, device_name: str | None, device_id: int | None, authority: bytes | None
) -> None:
    try:
        old = read_certificate(p)
    except IdentityError:
        return  # a damaged certificate holds nothing to keep: replacing it is the fix
    other = (device_name is not None and old.device_name != device_name) or (
        device_id is not None and old.device_id != device_id
    )
    issuer = ""
    if not other and authority is not None:
        try:
            verify_signature(authority, old.signed_bytes(), old.signature)
        except (BadSignature, CertificateError):
            other, issuer = True, " signed by another enrollment authority"
    if other:
        raise IdentityError(
            f"{p} holds the certificate of {old.device_name!r} (device {old.device_id})"
            f"{issuer}; refusing to overwrite it: give another file name"
        )


def write_certificate(
    path: str | os.PathLike[str], cert: DeviceCertificate, authority: bytes | None = None
) -> Path:
    """Write a device certificate (no secret) atomically; refuses to replace anything but a
    certificate of the same device (and, given ``authority``, the same issuer)
    (:func:`check_replaceable`)."""
    p = Path(path)
    check_replaceable(
        p,
        "certificate",
        device_name=cert.device_name,
        device_id=cert.device_id,
        authority=authority,
    )
    _make_folder(p.parent)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(certificate_text(cert), encoding="utf-8")
        os.replace(tmp, p)
    finally:
        tmp.unlink(missing_ok=True)
    return p


def read_certificate(path: str | os.PathLike[str]) -> DeviceCertificate:
    """A device certificate file (:func:`write_certificate`)."""
    fix = (
        "use the certificate `pifed enroll --authority-key` or `pifed authority sign` wrote "
        "for this device"
    )
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
