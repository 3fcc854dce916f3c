"""X25519 key pairs and HKDF-SHA256 key derivation for secure aggregation.

Bonawitz et al. (CCS 2017), Sec. 4: every client advertises two Diffie-Hellman public keys, ``c``
(to encrypt the Shamir shares it sends its peers) and ``s`` (to agree pairwise mask seeds). We use
X25519 (RFC 7748) from pycryptodome (``Crypto.PublicKey.ECC`` + ``Crypto.Protocol.DH``) and derive
every symmetric key with HKDF-SHA256 (RFC 5869), salted with the session id and labelled with the
purpose and both party ids, so a key can never be reused across sessions, purposes or directions.
"""

from __future__ import annotations

from Crypto.Hash import SHA256
from Crypto.Protocol.DH import import_x25519_private_key, import_x25519_public_key, key_agreement
from Crypto.Protocol.KDF import HKDF
from Crypto.PublicKey.ECC import EccKey

from .errors import InvalidPublicKey
from .randomness import RandomSource

__all__ = ["KEY_SIZE", "X25519KeyPair", "derive_key", "validate_public_key"]

#: Bytes in an X25519 secret key, a public key and every derived symmetric key.
KEY_SIZE = 32
_FIELD_PRIME = 2**255 - 19


def validate_public_key(public: bytes) -> EccKey:
    """Parse a raw X25519 public key, rejecting non-canonical and low-order encodings.

    Canonical encodings matter beyond hygiene: two different byte strings naming the same point
    would slip past the duplicate-key check.
    """
    if not isinstance(public, bytes | bytearray):
        raise InvalidPublicKey(
            f"public key must be bytes, got {type(public).__name__}; send the 32 raw bytes"
        )
    if len(public) != KEY_SIZE:
        raise InvalidPublicKey(
            f"X25519 public key must be {KEY_SIZE} bytes, got {len(public)}; send the raw "
            "RFC 7748 encoding"
        )
    u = int.from_bytes(public, "little")
    if u >= _FIELD_PRIME:
        raise InvalidPublicKey(
            "X25519 public key is not canonically encoded (u >= 2^255 - 19 or top bit set); "
            "export it with pycryptodome's export_key(format='raw')"
        )
    try:
        return import_x25519_public_key(bytes(public))
    except ValueError as exc:
        raise InvalidPublicKey(
            f"X25519 public key is invalid or of low order ({exc}); the peer must generate a "
            "fresh key pair"
        ) from exc


def derive_key(shared_secret: bytes, *, salt: bytes, info: bytes) -> bytes:
    """HKDF-SHA256 of a DH output into one 32-byte key bound to ``salt`` and ``info``."""
    key = HKDF(shared_secret, KEY_SIZE, salt, SHA256, num_keys=1, context=info)
    assert isinstance(key, bytes)
    return key


class X25519KeyPair:
    """An X25519 key pair whose secret is the 32-byte RFC 7748 scalar string.

    The secret bytes are what gets Shamir-shared (for the masking key ``s``); rebuilding the pair
    from reconstructed bytes and comparing public keys is how a tampered share is detected.
    """

    __slots__ = ("_key", "_public", "_secret")

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes | bytearray):
            raise TypeError(f"secret must be bytes, got {type(secret).__name__}")
        if len(secret) != KEY_SIZE:
            raise ValueError(f"X25519 secret must be {KEY_SIZE} bytes, got {len(secret)}")
        self._secret = bytes(secret)
        self._key = import_x25519_private_key(self._secret)
        self._public = self._key.public_key().export_key(format="raw")

    @classmethod
    def generate(cls, rng: RandomSource) -> X25519KeyPair:
        """Draw a fresh key pair from ``rng`` (32 bytes)."""
        return cls(rng(KEY_SIZE))

    @property
    def secret(self) -> bytes:
        """The 32 secret bytes (share them, never send them)."""
        return self._secret

    @property
    def public(self) -> bytes:
        """The 32-byte raw public key to advertise."""
        return bytes(self._public)

    def agree(self, peer_public: bytes, *, salt: bytes, info: bytes) -> bytes:
        """Agree a 32-byte key with a peer: HKDF(X25519(secret, peer_public), salt, info).

        Raises InvalidPublicKey for a malformed or low-order peer key.
        """
        peer = validate_public_key(peer_public)
        try:
            shared = key_agreement(static_priv=self._key, static_pub=peer, kdf=bytes)
        except ValueError as exc:  # pragma: no cover - low-order keys are rejected on import
            raise InvalidPublicKey(f"X25519 agreement failed ({exc})") from exc
        if not any(shared):
            raise InvalidPublicKey(  # pragma: no cover - defence in depth
                "X25519 agreement gave the all-zero secret; the peer key is of low order"
            )
        return derive_key(shared, salt=salt, info=info)

    def __repr__(self) -> str:
        return f"X25519KeyPair(public={self._public.hex()})"
