"""Session binding: the session id and the commitment to each self-mask seed.

Bonawitz et al. (CCS 2017) assume messages cannot be mixed across protocol runs. We make that
explicit: the session id is SHA-256 over the configuration digest, the server's fresh round nonce
and the sorted list of every advertised (id, c_pk, s_pk). Every later message, AEAD associated
data, HKDF salt and commitment includes it, so nothing from one session verifies in another --
including a session the coordinator restarted with fresh keys.

The commitment ``H(session, u, b_u)`` is sent to the server before any share of ``b_u`` is
revealed; the server checks the reconstructed seed against it. Each single share is committed
too (:func:`share_commitment`): its recipient checks it on opening and the server checks every
revealed share against it, so a bad share is traced to the responder that sent it.

The signed statements of the actively secure variant (:func:`advertise_statement`,
:func:`consistency_statement`) are domain-separated byte strings bound to the configuration and
round nonce, or to the session id, so a signature from one session never verifies in another.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable

from Crypto.Hash import SHA256

__all__ = [
    "NONCE_SIZE",
    "SESSION_ID_SIZE",
    "SHARE_OF_KEY",
    "SHARE_OF_SEED",
    "advertise_statement",
    "consistency_statement",
    "self_mask_commitment",
    "session_id",
    "share_commitment",
]

NONCE_SIZE = 32
SESSION_ID_SIZE = 32
_SHARE_LABEL = b"pifed-secagg/v2 share commitment"
#: The two kinds of share a client deals (of its masking key s^SK and of its self-mask seed b).
SHARE_OF_KEY = 0
SHARE_OF_SEED = 1


def session_id(
    config_digest: bytes, round_nonce: bytes, advertised: Iterable[tuple[int, bytes, bytes]]
) -> bytes:
    """SHA-256(domain, config digest, round nonce, sorted (id, c_pk, s_pk) list)."""
    h = SHA256.new(b"pifed-secagg/v2 session")
    h.update(config_digest)
    h.update(round_nonce)
    for cid, c_pk, s_pk in sorted(advertised):
        h.update(struct.pack("<I", cid) + c_pk + s_pk)
    return h.digest()


def self_mask_commitment(session: bytes, client_id: int, seed: bytes) -> bytes:
    """SHA-256(domain, session id, client id, b_u): binds ``b_u`` before its shares are opened."""
    h = SHA256.new(b"pifed-secagg/v2 self-mask commitment")
    h.update(session + struct.pack("<I", client_id) + seed)
    return h.digest()


def share_commitment(session: bytes, owner: int, holder: int, kind: int, share: bytes) -> bytes:
    """SHA-256(domain, session, owner, holder, kind, share): one share, bound to its place.

    The share is 32 uniformly random bytes to anyone holding fewer than t shares, so its hash
    reveals nothing a search could use.
    """
    # hashlib's SHA-256 (the same function as Crypto.Hash.SHA256): a client computes 4(n - 1)
    # of these per round, and hashlib's call is several times cheaper.
    data = _SHARE_LABEL + session + struct.pack("<IIB", owner, holder, kind) + share
    return hashlib.sha256(data).digest()


def advertise_statement(
    config_digest: bytes, round_nonce: bytes, client_id: int, c_public: bytes, s_public: bytes
) -> bytes:
    """What a client signs in AdvertiseKeys: its two fresh keys for this config and round."""
    return (
        b"pifed-secagg/v2 advertise\x00"
        + config_digest
        + round_nonce
        + struct.pack("<I", client_id)
        + c_public
        + s_public
    )


def consistency_statement(session: bytes, alive: Iterable[int]) -> bytes:
    """What a survivor signs in ConsistencyCheck: the sorted survivor set it was told."""
    ids = sorted(alive)
    return (
        b"pifed-secagg/v2 consistency\x00" + session + struct.pack(f"<I{len(ids)}I", len(ids), *ids)
    )
