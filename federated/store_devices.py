"""The fleet's enrolled devices in the store: tokens, public keys, the pinned enrollment
authority and the certificates it signed (issue 19).

Each device row holds the Ed25519 public key the Pi made and, once the enrollment authority
signed it, its certificate. The authority's public key is pinned in ``meta`` at the first
enrollment; a certificate it did not sign, or one for another device id, name or key, is refused
before it is stored. A device without a certificate is refused like a revoked one
(:class:`UncertifiedDevice`): it cannot take part in an actively secure round.

:class:`federated.store.Store` owns the connection and offers these methods as its own; this
class holds them so that everything about a device's identity is one read.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from pathlib import Path
from typing import Any

from edge.secagg.errors import CertificateError
from edge.secagg.identity import DeviceCertificate, verify_certificate
from federated.serial_db import SerialConnection
from federated.store_records import (
    Device,
    RevokedDevice,
    StoreError,
    UncertifiedDevice,
    UnknownDevice,
)

_DEVICE_COLS = "id, name, created, revoked, last_seen, public_key, certificate"


def _device(row: tuple) -> Device:
    device_id, name, created, revoked, last_seen, public_key, certificate = row
    key = bytes.fromhex(public_key) if public_key else None
    return Device(device_id, name, created, revoked, last_seen, key, certificate)


def hash_token(token: str) -> str:
    """Tokens are stored only as sha256, so a stolen database grants no access."""
    return hashlib.sha256(token.encode()).hexdigest()


#: How a Pi gets a new key (a revoked key is never enrolled again).
_NEW_KEY = (
    "a new key (on the Pi: move device.key and device.cert out of"
    " its identity folder and run `pifed edge --init-identity` again)"
)


class DeviceRegistry:
    """The devices table and the pinned authority, over the store's one connection."""

    def __init__(self, db: SerialConnection, path: Path, clock: Any) -> None:
        """Work on the store's connection ``db`` (``path`` only names the file in errors)."""
        self._db = db
        self.path = path
        self._clock = clock

    def enroll(self, name: str, public_key: bytes | None = None) -> str:
        """Register a device with the public key its Pi made, and return its new token (shown
        once, stored only hashed). It stays pending (refused) until :meth:`certify`."""
        if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
            raise ValueError(f"device name {name!r}: use 1-64 letters, digits, '-', '_' or '.'")
        # The prefix keeps a token from starting with "-", which a shell or argparse would
        # read as an option (token_urlsafe uses '-' and '_'), and makes tokens easy to grep for.
        token = "pfd_" + secrets.token_urlsafe(32)
        try:
            with self._db.transaction() as db:
                db.execute(
                    "INSERT INTO devices (name, token_sha256, created, public_key) "
                    "VALUES (?, ?, ?, ?)",
                    (name, hash_token(token), self._clock(), public_key and public_key.hex()),
                )
        except sqlite3.IntegrityError as e:
            if "public_key" in str(e):
                raise ValueError(self._key_taken(public_key)) from e
            raise ValueError(f"a device named {name!r} is already enrolled") from e
        return token

    def _key_taken(self, public_key: bytes | None) -> str:
        row = self._db.execute(
            "SELECT name FROM devices WHERE public_key=?", (public_key and public_key.hex(),)
        ).fetchone()
        return (
            f"that public key is already enrolled as device {row[0] if row else '?'!r}: every "
            "Pi makes its own key (`pifed edge --init-identity` on that Pi)"
        )

    def set_public_key(self, name: str, public_key: bytes) -> Device:
        """Give an active device that has no certificate yet (enrolled before device identities,
        or whose request was lost) its Pi's public key; its token stays valid."""
        device = self.device(name)
        if device.revoked is not None:
            raise RevokedDevice(
                f"device {name!r} was revoked; enroll the Pi under a new name with {_NEW_KEY}"
            )
        if device.certificate is not None:
            raise StoreError(
                f"device {name!r} already has a certificate; to re-key it, revoke it and enroll "
                f"the Pi under a new name with {_NEW_KEY}"
            )
        try:
            with self._db.transaction() as db:
                db.execute(
                    "UPDATE devices SET public_key=? WHERE id=?", (public_key.hex(), device.id)
                )
        except sqlite3.IntegrityError as e:
            raise ValueError(self._key_taken(public_key)) from e
        return self.device(name)

    def pin_authority(self, public: bytes) -> None:
        """Pin the enrollment authority's public key (the first enrollment does); a different
        one later is refused: every certificate of the fleet is under the pinned one."""
        current = self.authority()
        if current == public:
            return
        if current is not None:
            raise StoreError(
                f"{self.path} pins enrollment authority {current.hex()[:16]}..., not "
                f"{public.hex()[:16]}...: use the fleet's authority key (or a new --db for a "
                "new fleet)"
            )
        with self._db.transaction() as db:
            db.execute("INSERT INTO meta VALUES ('authority', ?)", (public.hex(),))

    def authority(self) -> bytes | None:
        """The pinned enrollment authority public key, or None before the first enrollment."""
        row = self._db.execute("SELECT value FROM meta WHERE key='authority'").fetchone()
        return bytes.fromhex(row[0]) if row else None

    def certify(self, cert: DeviceCertificate) -> Device:
        """Store the authority's certificate for an enrolled device, after checking it: signed
        by the pinned authority, for this device's id, name and registered public key."""
        authority = self.authority()
        if authority is None:
            raise UncertifiedDevice(
                f"{self.path} pins no enrollment authority yet: enroll with --authority-key "
                "or --authority (authority.pub) first"
            )
        try:
            verify_certificate(authority, cert)
        except CertificateError as e:
            raise UncertifiedDevice(str(e)) from e
        device = self.device_by_id(cert.device_id)
        if device is None or device.name != cert.device_name:
            raise UncertifiedDevice(
                f"the certificate is for device {cert.device_id} ({cert.device_name!r}), which "
                f"{self.path} does not hold: import it into the fleet that made the request"
            )
        if device.revoked is not None:
            raise RevokedDevice(f"device {device.name!r} was revoked; its certificate is refused")
        if device.public_key != cert.public_key:
            raise UncertifiedDevice(
                f"the certificate certifies another public key than device {device.name!r} "
                "enrolled with; sign the request `pifed enroll` wrote for it"
            )
        with self._db.transaction() as db:
            db.execute("UPDATE devices SET certificate=? WHERE id=?", (cert.to_bytes(), device.id))
        return self.device(device.name)

    def device(self, name: str) -> Device:
        """The device of that name, or UnknownDevice."""
        row = self._db.execute(
            f"SELECT {_DEVICE_COLS} FROM devices WHERE name=?", (name,)
        ).fetchone()
        if row is None:
            raise UnknownDevice(f"no device named {name!r} (see `pifed devices`)")
        return _device(row)

    def device_by_id(self, device_id: int) -> Device | None:
        """The device with this id, or None."""
        row = self._db.execute(
            f"SELECT {_DEVICE_COLS} FROM devices WHERE id=?", (device_id,)
        ).fetchone()
        return _device(row) if row else None

    def certificate(self, device_id: int) -> DeviceCertificate | None:
        """A device's stored certificate (None: pending or unknown)."""
        device = self.device_by_id(device_id)
        if device is None or device.certificate is None:
            return None
        return DeviceCertificate.from_bytes(device.certificate)

    def revoke(self, name: str) -> None:
        """Revoke a device: its token and its certificate are refused from now on."""
        with self._db.transaction() as db:
            cur = db.execute(
                "UPDATE devices SET revoked=? WHERE name=? AND revoked IS NULL",
                (self._clock(), name),
            )
            if cur.rowcount == 0:
                raise UnknownDevice(f"no active device named {name!r}")

    def authenticate(self, token: str) -> Device:
        """The device a token belongs to; raises UnknownDevice or RevokedDevice."""
        row = self._db.execute(
            f"SELECT {_DEVICE_COLS} FROM devices WHERE token_sha256=?", (hash_token(token),)
        ).fetchone()
        if row is None:
            raise UnknownDevice("unknown device token; enroll the device with `pifed enroll`")
        device = _device(row)
        if device.revoked is not None:
            raise RevokedDevice(f"device {device.name!r} was revoked")
        if device.certificate is None:
            raise UncertifiedDevice(
                f"device {device.name!r} has no certificate from the enrollment authority: "
                "finish its enrollment (`pifed enroll --import-cert FILE`, or `pifed enroll "
                f"{device.name} --public-key HEX --authority-key KEY`)"
            )
        return device

    def touch(self, device_id: int) -> None:
        """Record that a device was seen now."""
        self._db.execute("UPDATE devices SET last_seen=? WHERE id=?", (self._clock(), device_id))

    def devices(self) -> list[Device]:
        """All enrolled devices, oldest first."""
        rows = self._db.execute(f"SELECT {_DEVICE_COLS} FROM devices ORDER BY id").fetchall()
        return [_device(r) for r in rows]
