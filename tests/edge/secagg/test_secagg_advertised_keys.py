"""The ShareKeys key-list checks (edge/secagg/advertised_keys.py) with real Ed25519 certificates
and X25519 keys: the certificate cache verifies a certificate once and never trusts another, and
every way the list can be wrong raises its own error, in the order the client checks them."""

from __future__ import annotations

import pytest

from edge.secagg import DeterministicRandom, SecAggConfig, ShareKeysRequest
from edge.secagg.advertised_keys import CertificateCache, check_advertised_keys
from edge.secagg.errors import (
    BadSignature,
    CertificateError,
    DuplicatePublicKey,
    InvalidPublicKey,
    MalformedMessage,
    SessionMismatch,
    TooFewSurvivors,
    UnknownClient,
)
from edge.secagg.identity import SigningKey, issue_certificate
from edge.secagg.keys import X25519KeyPair
from edge.secagg.session import advertise_statement

AUTHORITY = SigningKey(bytes(range(32)))
OTHER_AUTHORITY = SigningKey(bytes(range(1, 33)))
NONCE = b"N" * 32
CONFIG = SecAggConfig(client_ids=(1, 2, 3, 4), vector_lengths=(4,))


def _devices() -> dict[int, SigningKey]:
    return {cid: SigningKey(bytes([cid]) * 32) for cid in CONFIG.client_ids}


def _request(**change: object) -> ShareKeysRequest:
    """The honest, signed key list of clients 1..4; ``change`` alters one part of it."""
    rng = DeterministicRandom(b"advertised-keys")
    pairs = {
        cid: (X25519KeyPair.generate(rng).public, X25519KeyPair.generate(rng).public)
        for cid in CONFIG.client_ids
    }
    pairs.update(change.pop("pairs", {}))  # type: ignore[call-overload]
    keys = tuple((cid, c_pk, s_pk) for cid, (c_pk, s_pk) in sorted(pairs.items()))
    keys = change.pop("keys", keys)  # type: ignore[assignment]
    devices = _devices()
    signed = change.pop("signed", None) or tuple(
        (
            issue_certificate(AUTHORITY, cid, f"pi-{cid}", devices[cid].public).to_bytes(),
            devices[cid].sign(advertise_statement(CONFIG.digest, NONCE, cid, c_pk, s_pk)),
        )
        for cid, c_pk, s_pk in keys
        if cid in devices
    )
    digest = change.pop("digest", CONFIG.digest)
    return ShareKeysRequest(NONCE, digest, keys, signed)  # type: ignore[arg-type]


def _own(request: ShareKeysRequest, cid: int = 1) -> tuple[bytes, bytes]:
    return next((c_pk, s_pk) for i, c_pk, s_pk in request.keys if i == cid)


def test_an_honest_signed_list_yields_every_key_and_device_key() -> None:
    request = _request()
    keys, signers = check_advertised_keys(
        1, CONFIG, NONCE, _own(request), request, CertificateCache(AUTHORITY.public)
    )
    assert keys == {cid: (c_pk, s_pk) for cid, c_pk, s_pk in request.keys}
    devices = _devices()
    assert {cid: key.public for cid, key in signers.items()} == {
        cid: devices[cid].public for cid in CONFIG.client_ids
    }
    # the semi-honest variant checks the same list and returns no signing keys
    assert check_advertised_keys(1, CONFIG, NONCE, _own(request), request, None) == (keys, {})


def test_the_cache_verifies_a_certificate_once_and_never_trusts_another() -> None:
    device = _devices()[2]
    cert = issue_certificate(AUTHORITY, 2, "pi-2", device.public).to_bytes()
    cache = CertificateCache(AUTHORITY.public)
    first = cache.device_key(cert, 2)
    assert first.public == device.public
    assert cache.device_key(cert, 2) is first  # remembered, not verified again
    with pytest.raises(CertificateError, match="presented as device 3"):
        cache.device_key(cert, 3)  # the same bytes for another id are checked afresh
    forged = issue_certificate(OTHER_AUTHORITY, 2, "pi-2", device.public).to_bytes()
    with pytest.raises(CertificateError, match="pinned enrollment authority"):
        cache.device_key(forged, 2)


def test_a_signature_over_other_keys_is_rejected() -> None:
    honest = _request()
    swapped = (honest.signed[1], honest.signed[0], *honest.signed[2:])
    request = _request(signed=swapped)
    with pytest.raises(CertificateError):  # client 2's certificate presented for client 1
        check_advertised_keys(
            1, CONFIG, NONCE, _own(request), request, CertificateCache(AUTHORITY.public)
        )
    short = _request(signed=(honest.signed[0], (honest.signed[1][0], honest.signed[0][1])))
    with pytest.raises(BadSignature, match="2 signatures for 4 clients"):
        check_advertised_keys(
            1, CONFIG, NONCE, _own(short), short, CertificateCache(AUTHORITY.public)
        )
    resigned = _request(
        signed=(honest.signed[0], (honest.signed[1][0], honest.signed[0][1]), *honest.signed[2:])
    )
    with pytest.raises(BadSignature, match="client 2 are not signed"):
        check_advertised_keys(
            1, CONFIG, NONCE, _own(resigned), resigned, CertificateCache(AUTHORITY.public)
        )


def _low_order() -> bytes:
    return bytes(32)  # the identity point: a low-order X25519 key


@pytest.mark.parametrize(
    ("name", "error", "match"),
    [
        ("digest", SessionMismatch, "different SecAggConfig"),
        ("unsorted", MalformedMessage, "sorted by id"),
        ("unknown", UnknownClient, "unknown client 9"),
        ("own keys", SessionMismatch, "this client's keys"),
        ("low order", InvalidPublicKey, "low order"),
        ("duplicate", DuplicatePublicKey, "client 3"),
        ("too few", TooFewSurvivors, "only 3 clients"),
    ],
)
def test_each_fault_of_the_list_raises_its_own_error(
    name: str, error: type[Exception], match: str
) -> None:
    honest = _request()
    own = _own(honest)
    if name == "digest":
        request = _request(digest=bytes(32))
    elif name == "unsorted":
        request = _request(keys=(honest.keys[1], honest.keys[0], *honest.keys[2:]))
    elif name == "unknown":
        request = _request(keys=(*honest.keys, (9, *honest.keys[0][1:])))
    elif name == "own keys":
        request, own = honest, (own[1], own[0])
    elif name == "low order":
        request = _request(pairs={3: (_low_order(), honest.keys[2][2])})
    elif name == "duplicate":
        request = _request(pairs={3: (honest.keys[1][1], honest.keys[2][2])})
    else:
        config = SecAggConfig(client_ids=(1, 2, 3, 4), vector_lengths=(4,), threshold=4)
        request = _request(keys=honest.keys[:3], digest=config.digest)
        with pytest.raises(error, match=match):
            check_advertised_keys(1, config, NONCE, own, request, None)
        return
    with pytest.raises(error, match=match):
        check_advertised_keys(1, CONFIG, NONCE, own, request, None)
