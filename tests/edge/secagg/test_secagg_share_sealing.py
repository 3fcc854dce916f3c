"""Sealing Shamir shares to peers and opening them (edge/secagg/share_sealing.py), with real
X25519 key pairs and AES-GCM: every direction opens, and each way a box can be wrong is an
accusation of its sender, never a share used."""

from __future__ import annotations

import pytest

from edge.secagg import DeterministicRandom, MaskedInputRequest
from edge.secagg.errors import (
    DecryptionError,
    MalformedMessage,
    SessionMismatch,
    TooFewSurvivors,
    UnknownClient,
)
from edge.secagg.keys import X25519KeyPair
from edge.secagg.messages import EncryptedShare
from edge.secagg.shamir import split_secret
from edge.secagg.share_sealing import (
    SHARE_PLAINTEXT_SIZE,
    check_share_senders,
    open_share,
    open_shares,
    seal_shares,
)

IDS = [1, 2, 3, 4]
SESSION = bytes(range(32))


def _dealt() -> tuple[dict[int, X25519KeyPair], dict[int, tuple[list[bytes], list[bytes]]], dict]:
    """Every client's c key pair, its shares of (s^SK, b) and its sealed boxes, by sender."""
    rng = DeterministicRandom(b"share-sealing")
    c_keys = {cid: X25519KeyPair.generate(rng) for cid in IDS}
    c_public = {cid: pair.public for cid, pair in c_keys.items()}
    shares = {
        cid: (split_secret(rng(32), 3, len(IDS), rng), split_secret(rng(32), 3, len(IDS), rng))
        for cid in IDS
    }
    sealed = {
        cid: seal_shares(cid, c_keys[cid], SESSION, IDS, c_public, *shares[cid], rng) for cid in IDS
    }
    return c_keys, shares, sealed


def _to(recipient: int, sealed: dict) -> list[EncryptedShare]:
    """The boxes sealed to ``recipient``, relabelled with their sender as the server relays them."""
    return [
        EncryptedShare(sender, box.nonce, box.ciphertext, box.key_commitment, box.seed_commitment)
        for sender, boxes in sorted(sealed.items())
        for box in boxes
        if box.peer == recipient
    ]


def test_every_peer_opens_exactly_the_shares_meant_for_it() -> None:
    c_keys, shares, sealed = _dealt()
    c_public = {cid: pair.public for cid, pair in c_keys.items()}
    for sender in IDS:
        assert [box.peer for box in sealed[sender]] == [p for p in IDS if p != sender]
    for recipient in IDS:
        opened, accused = open_shares(
            recipient, c_keys[recipient], SESSION, c_public, _to(recipient, sealed)
        )
        assert accused == []
        index = IDS.index(recipient)
        assert opened == {
            sender: (shares[sender][0][index], shares[sender][1][index])
            for sender in IDS
            if sender != recipient
        }


@pytest.mark.parametrize("fault", ["ciphertext", "commitment", "redirected", "session"])
def test_a_bad_box_is_an_accusation_of_its_sender(fault: str) -> None:
    c_keys, _, sealed = _dealt()
    c_public = {cid: pair.public for cid, pair in c_keys.items()}
    boxes = _to(1, sealed)
    bad = boxes[1]  # from client 3
    if fault == "ciphertext":
        flipped = bytes([bad.ciphertext[0] ^ 1]) + bad.ciphertext[1:]
        bad = EncryptedShare(bad.peer, bad.nonce, flipped, bad.key_commitment, bad.seed_commitment)
    elif fault == "commitment":
        bad = EncryptedShare(bad.peer, bad.nonce, bad.ciphertext, bytes(32), bad.seed_commitment)
    elif fault == "redirected":  # 3's box for client 2, handed to client 1
        meant_for_2 = next(box for box in _to(2, sealed) if box.peer == 3)
        bad = meant_for_2
    boxes[1] = bad
    session = bytes(32) if fault == "session" else SESSION
    opened, accused = open_shares(1, c_keys[1], session, c_public, boxes)
    if fault == "session":  # another session: no box opens
        assert (opened, accused) == ({}, [2, 3, 4])
        return
    assert accused == [3]
    assert sorted(opened) == [2, 4]
    with pytest.raises(DecryptionError, match="client 3"):
        open_share(1, c_keys[1], SESSION, c_public[3], bad)


def test_the_plaintext_size_is_the_wire_layout() -> None:
    # sender u32 | recipient u32 | two 32-byte shares; the server checks ciphertext lengths by it
    assert SHARE_PLAINTEXT_SIZE == 8 + 32 + 32


def _request(recipient: int, senders: list[int]) -> MaskedInputRequest:
    return MaskedInputRequest(
        recipient, SESSION, tuple(EncryptedShare(s, bytes(12), bytes(80)) for s in senders)
    )


@pytest.mark.parametrize(
    ("recipient", "senders", "error", "match"),
    [
        (2, [2, 3], SessionMismatch, "addressed to client 2"),
        (1, [2, 2, 3], MalformedMessage, "two share sets"),
        (1, [1, 2, 3], UnknownClient, "from 1"),
        (1, [2, 9], UnknownClient, "from 9"),
        (1, [2], TooFewSurvivors, "only 2 clients"),
    ],
)
def test_share_senders_are_distinct_known_peers_enough_for_the_threshold(
    recipient: int, senders: list[int], error: type[Exception], match: str
) -> None:
    addressed = _request(recipient, senders)
    with pytest.raises(error, match=match):
        check_share_senders(1, set(IDS), 3, addressed)
    check_share_senders(1, set(IDS), 3, _request(1, [2, 3]))  # the honest request passes
