"""Sealing a client's Shamir shares to each peer, and opening the shares sealed to it.

Bonawitz et al. (CCS 2017), Fig. 4, ShareKeys: client u splits its masking secret ``s_u^SK`` and
its self-mask seed ``b_u`` t-of-|U1| and sends peer v its two shares, encrypted under a key only u
and v can agree (X25519 of their ``c`` keys, HKDF-expanded with the session id as salt and the
ordered (sender, recipient) pair as info) and relayed by the server. The plaintext names sender
and recipient, the AES-GCM associated data binds session, stage and direction, and every single
share is committed to (:func:`~edge.secagg.session.share_commitment`), so the recipient can tell
a share that was tampered with, redirected or lied about -- and accuse its sender rather than
mask with it.

Pure computation on bytes: no I/O, no session state; randomness comes in as ``rng``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence, Set

from . import aead
from .errors import (
    DecryptionError,
    MalformedMessage,
    SessionMismatch,
    TooFewSurvivors,
    UnknownClient,
)
from .keys import X25519KeyPair
from .messages import EncryptedShare, MaskedInputRequest
from .randomness import RandomSource
from .session import SHARE_OF_KEY, SHARE_OF_SEED, share_commitment
from .shamir import SECRET_SIZE
from .stages import Stage

__all__ = [
    "SHARE_KEY_INFO",
    "SHARE_PLAINTEXT_SIZE",
    "check_share_senders",
    "open_share",
    "open_shares",
    "seal_shares",
    "share_key_info",
]

#: HKDF label of the AES-GCM key client ``sender`` uses to seal shares for ``recipient``.
SHARE_KEY_INFO = b"pifed-secagg/v1 share-key"
#: sender u32 | recipient u32 | share of s_u^SK (32) | share of b_u (32)
SHARE_PLAINTEXT_SIZE = 8 + 2 * SECRET_SIZE


def share_key_info(sender: int, recipient: int) -> bytes:
    """HKDF info for the direction sender -> recipient (each direction gets its own key)."""
    return SHARE_KEY_INFO + struct.pack("<II", sender, recipient)


def seal_shares(
    sender: int,
    c_keys: X25519KeyPair,
    session_id: bytes,
    holders: Sequence[int],
    c_public: Mapping[int, bytes],
    key_shares: Sequence[bytes],
    seed_shares: Sequence[bytes],
    rng: RandomSource,
) -> tuple[EncryptedShare, ...]:
    """Seal share ``i`` of ``s^SK`` and of ``b`` to ``holders[i]`` (``sender``'s own is skipped).

    Why one sealed box per peer: only that peer can open it, so the server relaying it learns
    nothing of the shares. ``c_public`` maps each holder to its advertised ``c`` public key; one
    fresh AES-GCM nonce is drawn from ``rng`` per peer, in ``holders`` order.
    """
    sealed = []
    for index, peer in enumerate(holders):
        if peer == sender:
            continue
        key = c_keys.agree(c_public[peer], salt=session_id, info=share_key_info(sender, peer))
        nonce = rng(aead.NONCE_SIZE)
        plaintext = struct.pack("<II", sender, peer) + key_shares[index] + seed_shares[index]
        aad = aead.associated_data(session_id, Stage.SHARE_KEYS, sender, peer)
        sealed.append(
            EncryptedShare(
                peer,
                nonce,
                aead.seal(key, nonce, plaintext, aad),
                share_commitment(session_id, sender, peer, SHARE_OF_KEY, key_shares[index]),
                share_commitment(session_id, sender, peer, SHARE_OF_SEED, seed_shares[index]),
            )
        )
    return tuple(sealed)


def open_share(
    recipient: int,
    c_keys: X25519KeyPair,
    session_id: bytes,
    sender_c_public: bytes,
    item: EncryptedShare,
) -> tuple[bytes, bytes]:
    """(share of the sender's s^SK, share of its b) sealed to ``recipient``.

    Raises DecryptionError naming the sender if the box does not open, is not bound to
    (sender, recipient), or holds shares other than the ones the sender committed to -- the
    grounds on which the recipient accuses that sender instead of masking with it.
    """
    key = c_keys.agree(sender_c_public, salt=session_id, info=share_key_info(item.peer, recipient))
    aad = aead.associated_data(session_id, Stage.SHARE_KEYS, item.peer, recipient)
    try:
        plaintext = aead.open_sealed(key, item.nonce, item.ciphertext, aad)
    except DecryptionError as exc:
        raise DecryptionError(
            f"the sealed shares of client {item.peer} do not open: {exc}"
        ) from exc
    if len(plaintext) != SHARE_PLAINTEXT_SIZE or plaintext[:8] != struct.pack(
        "<II", item.peer, recipient
    ):
        raise DecryptionError(
            f"share plaintext from {item.peer} is not bound to ({item.peer}, {recipient})"
        )
    key_share, seed_share = plaintext[8 : 8 + SECRET_SIZE], plaintext[8 + SECRET_SIZE :]
    if (
        share_commitment(session_id, item.peer, recipient, SHARE_OF_KEY, key_share)
        != item.key_commitment
        or share_commitment(session_id, item.peer, recipient, SHARE_OF_SEED, seed_share)
        != item.seed_commitment
    ):
        raise DecryptionError(
            f"the shares client {item.peer} sealed do not match the commitments it sent"
        )
    return key_share, seed_share


def check_share_senders(
    recipient: int, peers: Set[int], threshold: int, request: MaskedInputRequest
) -> None:
    """Raise unless ``request`` is addressed to ``recipient`` and carries at most one share set
    from each other member of ``peers`` (the advertised key list), enough to reach ``threshold``.

    Why before opening anything: shares from a stranger, or two sets from one sender, are a
    malformed request rather than one peer's fault, and too few senders mean the round cannot
    complete whatever opens.
    """
    if request.recipient != recipient:
        raise SessionMismatch(
            f"MaskedInputRequest is addressed to client {request.recipient}, not {recipient}"
        )
    senders = [item.peer for item in request.shares]
    if len(set(senders)) != len(senders):
        raise MalformedMessage("MaskedInputRequest carries two share sets from the same sender")
    for sender in senders:
        if sender == recipient or sender not in peers:
            raise UnknownClient(
                f"MaskedInputRequest carries shares from {sender}, which is not a peer in "
                "this session's advertised key list"
            )
    if len(senders) + 1 < threshold:
        raise TooFewSurvivors(
            f"only {len(senders) + 1} clients shared keys, threshold is {threshold}"
        )


def open_shares(
    recipient: int,
    c_keys: X25519KeyPair,
    session_id: bytes,
    c_public: Mapping[int, bytes],
    items: Iterable[EncryptedShare],
) -> tuple[dict[int, tuple[bytes, bytes]], list[int]]:
    """Open every sealed share set in ``items``: (sender -> its two shares, accused senders).

    Why a bad box is an accusation and not an error: one lying peer (or a server tampering with
    its box) must not take the honest recipient down with it; the recipient masks without the
    accused senders and names them, in the order they came, for the server to settle.
    """
    opened: dict[int, tuple[bytes, bytes]] = {}
    accused: list[int] = []
    for item in items:
        try:
            opened[item.peer] = open_share(recipient, c_keys, session_id, c_public[item.peer], item)
        except DecryptionError:
            accused.append(item.peer)
    return opened, accused
