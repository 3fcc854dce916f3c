"""AES-256-GCM with associated data bound to session, stage, sender and recipient.

Bonawitz et al. (CCS 2017) route the Shamir shares of client ``u`` for client ``v`` through the
server, encrypted under a key only ``u`` and ``v`` can agree. The associated data binds each
ciphertext to the session id, the protocol stage and the ordered (sender, recipient) pair, so the
server can neither replay it in another session nor redirect it to another client: any of those
yields :class:`DecryptionError`.
"""

from __future__ import annotations

import struct

from Crypto.Cipher import AES

from .errors import DecryptionError
from .stages import Stage

__all__ = ["NONCE_SIZE", "TAG_SIZE", "associated_data", "open_sealed", "seal"]

NONCE_SIZE = 12
TAG_SIZE = 16
_AAD_DOMAIN = b"pifed-secagg/v1 aead"


def associated_data(session_id: bytes, stage: Stage, sender: int, recipient: int) -> bytes:
    """The associated data of one ciphertext: domain, session id, stage, sender, recipient."""
    return _AAD_DOMAIN + bytes(session_id) + struct.pack("<BII", int(stage), sender, recipient)


def seal(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext``; returns ciphertext || 16-byte tag."""
    if len(key) != 32:
        raise ValueError(f"AES-256-GCM key must be 32 bytes, got {len(key)}")
    if len(nonce) != NONCE_SIZE:
        raise ValueError(f"GCM nonce must be {NONCE_SIZE} bytes, got {len(nonce)}")
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=TAG_SIZE)
    cipher.update(aad)
    ciphertext, tag = cipher.encrypt_and_digest(plaintext)
    return ciphertext + tag


def open_sealed(key: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
    """Verify and decrypt ciphertext || tag; raises DecryptionError, never returns garbage."""
    if len(key) != 32:
        raise ValueError(f"AES-256-GCM key must be 32 bytes, got {len(key)}")
    if len(nonce) != NONCE_SIZE:
        raise DecryptionError(f"GCM nonce must be {NONCE_SIZE} bytes, got {len(nonce)}")
    if len(sealed) < TAG_SIZE:
        raise DecryptionError(f"ciphertext of {len(sealed)} bytes is shorter than its tag")
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=TAG_SIZE)
    cipher.update(aad)
    try:
        return cipher.decrypt_and_verify(sealed[:-TAG_SIZE], sealed[-TAG_SIZE:])
    except ValueError as exc:
        raise DecryptionError(
            "AES-GCM authentication failed: the ciphertext or tag was altered, or it was "
            "encrypted for another session, stage, sender or recipient; discard it"
        ) from exc
