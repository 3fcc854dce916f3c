"""Session binding: the session id and the commitment to each self-mask seed.

Bonawitz et al. (CCS 2017) assume messages cannot be mixed across protocol runs. We make that
explicit: the session id is SHA-256 over the configuration digest, the server's fresh round nonce
and the sorted list of every advertised (id, c_pk, s_pk). Every later message, AEAD associated
data, HKDF salt and commitment includes it, so nothing from one session verifies in another --
including a session the coordinator restarted with fresh keys.

The commitment ``H(session, u, b_u)`` is sent to the server before any share of ``b_u`` is
revealed; the server checks the reconstructed seed against it, which detects tampered shares.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from Crypto.Hash import SHA256

__all__ = ["NONCE_SIZE", "SESSION_ID_SIZE", "self_mask_commitment", "session_id"]

NONCE_SIZE = 32
SESSION_ID_SIZE = 32


def session_id(
    config_digest: bytes, round_nonce: bytes, advertised: Iterable[tuple[int, bytes, bytes]]
) -> bytes:
    """SHA-256(domain, config digest, round nonce, sorted (id, c_pk, s_pk) list)."""
    h = SHA256.new(b"pifed-secagg/v1 session")
    h.update(config_digest)
    h.update(round_nonce)
    for cid, c_pk, s_pk in sorted(advertised):
        h.update(struct.pack("<I", cid) + c_pk + s_pk)
    return h.digest()


def self_mask_commitment(session: bytes, client_id: int, seed: bytes) -> bytes:
    """SHA-256(domain, session id, client id, b_u): binds ``b_u`` before its shares are opened."""
    h = SHA256.new(b"pifed-secagg/v1 self-mask commitment")
    h.update(session + struct.pack("<I", client_id) + seed)
    return h.digest()
