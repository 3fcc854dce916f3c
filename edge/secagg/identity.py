"""Long-term device identities: Ed25519 signing keys certified by an enrollment authority.

Bonawitz et al. (CCS 2017), Sec. 6 (the actively secure variant) assume a PKI: each client signs
what it advertises, and every peer checks the signature against a key bound to that client's
identity. Here the binding is a :class:`DeviceCertificate`: the enrollment authority's Ed25519
signature over (fleet device id, device name, device public key). Every Pi pins the authority's
public key, as it pins the TLS CA, so a coordinator cannot invent a client or swap a key: it
does not hold the authority's private key, which an operator can keep offline.

Primitives only, no I/O: keys and certificates are bytes in and bytes out (Ed25519 per RFC 8032
from pycryptodome's ``Crypto.Signature.eddsa``). Every check raises, never returns ``False``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from Crypto.PublicKey.ECC import EccKey
from Crypto.Signature import eddsa

from .errors import BadSignature, CertificateError
from .randomness import RandomSource, system_random

__all__ = [
    "CERTIFICATE_LABEL",
    "PUBLIC_KEY_SIZE",
    "SIGNATURE_SIZE",
    "DeviceCertificate",
    "Identity",
    "SigningKey",
    "VerifyingKey",
    "issue_certificate",
    "verify_certificate",
    "verify_signature",
]

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
_SEED_SIZE = 32
#: Domain separation for what the authority signs (never a message of the protocol itself).
CERTIFICATE_LABEL = b"pifed/device-certificate/v1\x00"
_CERT_VERSION = 1
_MAX_NAME = 255


def _public_key(public: bytes) -> EccKey:
    if not isinstance(public, bytes | bytearray) or len(public) != PUBLIC_KEY_SIZE:
        raise BadSignature(
            f"an Ed25519 public key is {PUBLIC_KEY_SIZE} raw bytes (RFC 8032), got "
            f"{len(public) if isinstance(public, bytes | bytearray) else type(public).__name__}"
        )
    try:
        return eddsa.import_public_key(bytes(public))
    except ValueError as e:
        raise BadSignature(f"not a valid Ed25519 public key: {e}") from e


def check_certifiable_key(public: bytes) -> None:
    """Raise :class:`BadSignature` unless ``public`` may be certified: a valid Ed25519 point
    and not one of small order (the identity among them), under which signatures can be made
    without any secret. Checked where a key enters the fleet (enrollment, the authority's
    signature), not on every later use: a certificate's key is one its authority checked, and
    the check costs about as much as a signature verification."""
    if (_public_key(public).pointQ * 8).is_point_at_infinity():
        raise BadSignature("a small-order Ed25519 public key (no one holds its private key)")


class SigningKey:
    """An Ed25519 private key (a device's, or the enrollment authority's)."""

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes | bytearray) or len(seed) != _SEED_SIZE:
            raise CertificateError(
                f"an Ed25519 private key is a {_SEED_SIZE}-byte seed; the key file is damaged "
                "or is not a pifed signing key"
            )
        self._seed = bytes(seed)
        self._key = eddsa.import_private_key(self._seed)
        self._public = self._key.public_key().export_key(format="raw")

    @classmethod
    def generate(cls, rng: RandomSource | None = None) -> SigningKey:
        """A fresh key from ``rng`` (the OS CSPRNG by default)."""
        return cls((rng or system_random)(_SEED_SIZE))

    def to_bytes(self) -> bytes:
        """The 32-byte seed (RFC 8032 private key); keep it secret."""
        return self._seed

    @property
    def public(self) -> bytes:
        """The 32-byte raw public key."""
        return self._public

    def sign(self, message: bytes) -> bytes:
        """A 64-byte RFC 8032 signature over ``message``."""
        return eddsa.new(self._key, "rfc8032").sign(bytes(message))

    def __repr__(self) -> str:
        return f"SigningKey(public={self._public.hex()[:16]}...)"


class VerifyingKey:
    """An Ed25519 public key, decoded once, for checking many signatures.

    A Pi checks ~n + t signatures a round; decoding the key and building the verifier once per
    peer instead of per signature saves about a fifth of each check.
    """

    __slots__ = ("_public", "_verifier")

    def __init__(self, public: bytes) -> None:
        self._verifier = eddsa.new(_public_key(public), "rfc8032")
        self._public = bytes(public)

    @property
    def public(self) -> bytes:
        """The 32-byte raw public key."""
        return self._public

    def verify(self, message: bytes, signature: bytes) -> None:
        """Raise :class:`BadSignature` unless ``signature`` is this key's over ``message``."""
        if not isinstance(signature, bytes | bytearray) or len(signature) != SIGNATURE_SIZE:
            raise BadSignature(f"an Ed25519 signature is {SIGNATURE_SIZE} bytes")
        try:
            self._verifier.verify(bytes(message), bytes(signature))
        except ValueError as e:
            raise BadSignature("signature does not verify under the claimed key") from e


def verify_signature(public: bytes, message: bytes, signature: bytes) -> None:
    """Raise :class:`BadSignature` unless ``signature`` is ``public``'s over ``message``."""
    VerifyingKey(public).verify(message, signature)


@dataclass(frozen=True)
class DeviceCertificate:
    """The authority's statement: device ``device_id`` signs with ``public_key``."""

    device_id: int
    device_name: str
    public_key: bytes
    signature: bytes

    def signed_bytes(self) -> bytes:
        """The canonical bytes the authority signs (label, version, id, name, key)."""
        return _tbs(self.device_id, self.device_name, self.public_key)

    def to_bytes(self) -> bytes:
        """Canonical encoding: the signed bytes followed by the 64-byte signature."""
        return self.signed_bytes() + self.signature

    @classmethod
    def from_bytes(cls, data: bytes) -> DeviceCertificate:
        """Parse :meth:`to_bytes`; raises :class:`CertificateError` on any malformation."""
        data = bytes(data)
        head = len(CERTIFICATE_LABEL) + 1 + 8 + 1
        if len(data) < head + PUBLIC_KEY_SIZE + SIGNATURE_SIZE or not data.startswith(
            CERTIFICATE_LABEL
        ):
            raise CertificateError(
                "not a pifed device certificate (wrong label or too short); re-run `pifed enroll`"
            )
        version = data[len(CERTIFICATE_LABEL)]
        if version != _CERT_VERSION:
            raise CertificateError(
                f"device certificate version {version}, this pifed reads {_CERT_VERSION}; "
                "upgrade pifed or re-enroll the device"
            )
        (device_id,) = struct.unpack_from(">Q", data, len(CERTIFICATE_LABEL) + 1)
        name_len = data[head - 1]
        if len(data) != head + name_len + PUBLIC_KEY_SIZE + SIGNATURE_SIZE:
            raise CertificateError("device certificate has the wrong length; it is damaged")
        try:
            name = data[head : head + name_len].decode("utf-8")
        except UnicodeDecodeError as e:
            raise CertificateError("device certificate name is not UTF-8; it is damaged") from e
        key = data[head + name_len : head + name_len + PUBLIC_KEY_SIZE]
        sig = data[head + name_len + PUBLIC_KEY_SIZE :]
        return cls(int(device_id), name, key, sig)


def _tbs(device_id: int, device_name: str, public_key: bytes) -> bytes:
    if isinstance(device_id, bool) or not isinstance(device_id, int) or not 0 <= device_id < 2**64:
        raise CertificateError(f"device id must be an int in [0, 2**64), got {device_id!r}")
    name = device_name.encode("utf-8")
    if len(name) > _MAX_NAME:
        raise CertificateError(f"device name is over {_MAX_NAME} bytes")
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise CertificateError(f"device public key must be {PUBLIC_KEY_SIZE} bytes")
    return (
        CERTIFICATE_LABEL
        + bytes([_CERT_VERSION])
        + struct.pack(">Q", device_id)
        + bytes([len(name)])
        + name
        + bytes(public_key)
    )


def issue_certificate(
    authority: SigningKey, device_id: int, device_name: str, public_key: bytes
) -> DeviceCertificate:
    """The authority certifies a device's signing key (at enrollment, possibly offline)."""
    check_certifiable_key(public_key)
    tbs = _tbs(device_id, device_name, public_key)
    return DeviceCertificate(device_id, device_name, bytes(public_key), authority.sign(tbs))


def verify_certificate(
    authority_public: bytes, cert: DeviceCertificate, device_id: int | None = None
) -> None:
    """Raise :class:`CertificateError` unless the pinned authority issued ``cert`` (for
    ``device_id``, when given)."""
    if not isinstance(cert, DeviceCertificate):
        raise CertificateError(f"expected a DeviceCertificate, got {type(cert).__name__}")
    if device_id is not None and cert.device_id != device_id:
        raise CertificateError(
            f"certificate is for device {cert.device_id}, presented as device {device_id}"
        )
    try:
        verify_signature(authority_public, cert.signed_bytes(), cert.signature)
    except BadSignature as e:
        raise CertificateError(
            f"certificate of device {cert.device_id} ({cert.device_name!r}) is not signed by the "
            "pinned enrollment authority; re-enroll it with this fleet's authority"
        ) from e
    _public_key(cert.public_key)


@dataclass(frozen=True)
class Identity:
    """What a Pi holds to take part in an actively secure session: its signing key, the
    authority's certificate for it, and the authority's public key it pins."""

    key: SigningKey
    certificate: DeviceCertificate
    authority: bytes

    def __post_init__(self) -> None:
        verify_certificate(self.authority, self.certificate)
        if self.certificate.public_key != self.key.public:
            raise CertificateError(
                "the signing key does not match its certificate; the key and certificate files "
                "come from different enrollments: re-enroll the device"
            )
