"""The enrollment authority: the Ed25519 key that certifies each Pi's signing key.

Its private key need not be on the coordinator. Two ways to enroll:

- online: ``pifed enroll NAME --public-key HEX --authority-key /media/usb/authority.key`` signs
  at once (the key can sit on a USB stick that is plugged in only to enroll);
- offline: ``pifed enroll NAME --public-key HEX --request-out NAME.request`` writes an
  :class:`EnrollmentRequest` (the store's device id, name and public key, and the authority the
  fleet pins); ``pifed authority sign NAME.request --key authority.key`` on another machine
  writes the certificate; ``pifed enroll --import-cert NAME.cert`` stores it.

The coordinator itself only ever needs ``authority.pub`` (the store pins it at the first
enrollment). Files are the labelled one-line formats of :mod:`edge.device_identity`; the
private key is mode 600 and refused otherwise.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from edge.device_identity import (
    AUTHORITY_KEY_LABEL,
    AUTHORITY_PUB_LABEL,
    DEVICE_CERT,
    IdentityError,
    check_device_public_key,
    check_replaceable,
    format_public_key,
    init_identity,
    parse_public_key,
    read_public_key,
    read_secret_key,
    write_certificate,
    write_public_key,
    write_secret_key,
)
from edge.secagg.identity import DeviceCertificate, SigningKey, issue_certificate
from federated.store import Device, Store, UnknownDevice
from model.manifest import write_atomic

AUTHORITY_KEY = "authority.key"
AUTHORITY_PUB = "authority.pub"
REQUEST_KIND = "pifed-enrollment-request"
REQUEST_VERSION = 1


@dataclass(frozen=True)
class AuthorityPaths:
    """Where :func:`init_authority` wrote the key pair."""

    key: Path
    public: Path


def init_authority(out: str | os.PathLike[str]) -> AuthorityPaths:
    """A fresh authority in ``out``: authority.key (mode 600) and authority.pub. Refuses to
    replace an existing key (every certificate it issued would stop verifying)."""
    d = Path(out)
    if d.exists() and not d.is_dir():
        raise IdentityError(f"{d} is a file; give a folder for authority.key and authority.pub")
    paths = AuthorityPaths(d / AUTHORITY_KEY, d / AUTHORITY_PUB)
    if paths.public.exists() and not paths.key.exists():
        raise IdentityError(
            f"{paths.public} already exists (without authority.key beside it, moved away?); "
            "an authority is never overwritten: every certificate it issued would stop "
            f"verifying. Put authority.key back, or give another --out than {d}"
        )
    key = SigningKey.generate()
    write_secret_key(paths.key, key, AUTHORITY_KEY_LABEL)
    write_public_key(paths.public, key.public, AUTHORITY_PUB_LABEL)
    return paths


def load_authority_key(path: str | os.PathLike[str]) -> SigningKey:
    """The authority's private key (mode 600 or refused)."""
    return read_secret_key(
        path,
        AUTHORITY_KEY_LABEL,
        "enrollment authority key",
        "pass the authority.key `pifed authority init` wrote",
    )


def load_authority_public(path: str | os.PathLike[str]) -> bytes:
    """The authority's public key (what the coordinator and every Pi pin)."""
    return read_public_key(
        path,
        AUTHORITY_PUB_LABEL,
        "enrollment authority public key",
        "pass the authority.pub `pifed authority init` wrote",
    )


@dataclass(frozen=True)
class EnrollmentRequest:
    """What the offline authority is asked to certify: the store's id for the device, its
    name, its public key, and the authority public key the fleet pins (so a request signed
    with another authority's key is refused by the signer, not found out at the first round)."""

    device_id: int
    device_name: str
    public_key: bytes
    authority: bytes

    def to_json(self) -> str:
        """The request file's text."""
        return json.dumps(
            {
                "kind": REQUEST_KIND,
                "version": REQUEST_VERSION,
                "device_id": self.device_id,
                "device_name": self.device_name,
                "public_key": format_public_key(self.public_key),
                "authority": format_public_key(self.authority),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str, source: str = "request") -> EnrollmentRequest:
        """Parse :meth:`to_json`; raises IdentityError naming what is wrong."""
        try:
            d = json.loads(text)
            if d.get("kind") != REQUEST_KIND or d.get("version") != REQUEST_VERSION:
                raise ValueError(f"not a {REQUEST_KIND} version {REQUEST_VERSION}")
            device_id = d["device_id"]
            if isinstance(device_id, bool) or not isinstance(device_id, int) or device_id < 0:
                raise ValueError(f"device_id {device_id!r}")
            name = d["device_name"]
            if not isinstance(name, str) or not name:
                raise ValueError(f"device_name {name!r}")
            return cls(
                device_id, name, parse_public_key(d["public_key"]), parse_public_key(d["authority"])
            )
        except (ValueError, KeyError, TypeError, AttributeError, IdentityError) as e:
            raise IdentityError(
                f"{source} is not a pifed enrollment request ({e}); use the file "
                "`pifed enroll --request-out` wrote"
            ) from e


def request_text(request: EnrollmentRequest) -> str:
    """A request file's text (no secret in it)."""
    return request.to_json() + "\n"


def check_request_replaceable(
    path: str | os.PathLike[str],
    device_name: str | None = None,
    device_id: int | None = None,
    authority: bytes | None = None,
) -> None:
    """Raise unless ``path`` is free or an earlier request (never a key over which a
    mistyped ``--request-out`` would write) of the same device: given ``device_name``,
    ``device_id`` or ``authority``, another device's request (or one for another authority)
    is refused too, since it may still wait to be signed."""
    p = Path(path)
    own = None
    if p.is_file():
        try:
            own = json.loads(p.read_text(encoding="utf-8")).get("kind") == REQUEST_KIND
        except (OSError, ValueError, AttributeError):
            own = False
    check_replaceable(p, "enrollment request", own)
    if not own:
        return
    try:
        old = read_request(p)
    except IdentityError:
        return  # a damaged request holds nothing to keep: replacing it is the fix
    issuer = ""
    other = (device_name is not None and old.device_name != device_name) or (
        device_id is not None and old.device_id != device_id
    )
    if not other and authority is not None and old.authority != authority:
        other, issuer = True, " for another enrollment authority"
    if other:
        raise IdentityError(
            f"{p} holds the enrollment request of {old.device_name!r} (device "
            f"{old.device_id}){issuer}; refusing to overwrite it: give another file name"
        )


def write_request(path: str | os.PathLike[str], request: EnrollmentRequest) -> Path:
    """Write a request file atomically; refuses to replace anything but a request of the
    same device and authority."""
    p = Path(path)
    check_request_replaceable(p, request.device_name, request.device_id, request.authority)
    write_atomic(p, request_text(request).encode())
    return p


def read_request(path: str | os.PathLike[str]) -> EnrollmentRequest:
    """A request file from :func:`write_request`."""
    p = Path(path)
    fix = "pass the file `pifed enroll --request-out` wrote"
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise IdentityError(
            f"enrollment request {p} is not text (binary or damaged); {fix}"
        ) from None
    except OSError as e:
        raise IdentityError(f"enrollment request {p} cannot be read ({e.strerror}); {fix}") from e
    return EnrollmentRequest.from_json(text, str(p))


def sign_request(request: EnrollmentRequest, key: SigningKey) -> DeviceCertificate:
    """Certify a request's key for its device id; refuses a key that is not the authority the
    fleet pins."""
    if key.public != request.authority:
        raise IdentityError(
            f"this authority key (public {format_public_key(key.public)[:16]}...) is not the "
            f"one the fleet pins ({format_public_key(request.authority)[:16]}...); sign with "
            "the fleet's authority.key"
        )
    return issue_certificate(key, request.device_id, request.device_name, request.public_key)


def enroll_signed(
    store: Store, name: str, public_key: bytes, key: SigningKey
) -> tuple[str, DeviceCertificate]:
    """Online enrollment: register the device with its Pi's public key, certify it with the
    authority key at hand, store the certificate; returns (token, certificate). A device of
    that name with no certificate yet (pending, or from before device identities) keeps its
    token and gets the key: the returned token is then empty."""
    store.pin_authority(key.public)
    token, device = _register(store, name, public_key)
    cert = issue_certificate(key, device.id, device.name, public_key)
    store.certify(cert)
    return token, cert


def enroll_request(
    store: Store, name: str, public_key: bytes, authority: bytes | None
) -> tuple[str, EnrollmentRequest]:
    """Offline enrollment, step 1: register the device (pending: refused until its
    certificate is imported) and return (token, the request for the authority to sign)."""
    if authority is not None:
        store.pin_authority(authority)
    pinned = store.authority()
    if pinned is None:
        raise IdentityError(
            f"{store.path} pins no enrollment authority yet: pass --authority authority.pub "
            "(from `pifed authority init`) once"
        )
    token, device = _register(store, name, public_key)
    return token, EnrollmentRequest(device.id, device.name, public_key, pinned)


def _register(store: Store, name: str, public_key: bytes) -> tuple[str, Device]:
    check_device_public_key(public_key, "the device public key")  # before any row is written
    try:
        existing = store.device(name)
    except UnknownDevice:
        check_new_name(name)
        return store.enroll(name, public_key), store.device(name)
    if existing.public_key == public_key and existing.certificate is None:
        return "", existing
    return "", store.set_public_key(name, public_key)


def check_new_name(name: str) -> None:
    """Refuse a new device name the command line could not name again: one starting with
    "-" reads as an option, so `pifed enroll --revoke NAME` would never reach it."""
    if name.startswith("-"):
        raise IdentityError(
            f"device name {name!r} starts with '-', which the command line reads as an option "
            "(it could not be revoked by name): start it with a letter or digit"
        )


def enroll_local(store: Store, name: str, key: SigningKey, identity_dir: str | Path) -> str:
    """Enroll a Pi whose identity folder is on this machine (``pifed demo``, drills, tests):
    the same steps an operator runs, in one call. Makes its key in ``identity_dir`` (as
    ``pifed edge --init-identity``), certifies it (as ``pifed enroll --authority-key``) and
    writes device.cert and the pinned authority.pub beside it; returns the token."""
    d = Path(identity_dir)
    device_key = init_identity(d)
    token, cert = enroll_signed(store, name, device_key.public, key)
    write_certificate(d / DEVICE_CERT, cert, key.public)
    write_public_key(d / AUTHORITY_PUB, key.public, AUTHORITY_PUB_LABEL)
    return token
