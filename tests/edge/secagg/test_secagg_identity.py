"""Device signing keys and enrollment certificates (edge/secagg/identity.py), with known answers.

Ed25519 (RFC 8032) is deterministic, so a fixed seed pins the public key, a signature and a
certificate's bytes; a change to the encoding or the labels breaks every enrolled device.
"""

from __future__ import annotations

import hashlib

import pytest

from edge.secagg import DeterministicRandom
from edge.secagg.errors import BadSignature, CertificateError, SecAggError
from edge.secagg.identity import (
    DeviceCertificate,
    Identity,
    SigningKey,
    VerifyingKey,
    check_certifiable_key,
    issue_certificate,
    verify_certificate,
    verify_signature,
)

AUTHORITY = SigningKey(bytes(range(32)))
DEVICE = SigningKey(bytes(range(32, 64)))


def test_rfc8032_test_vector_1() -> None:
    """RFC 8032, section 7.1, TEST 1: the empty message."""
    key = SigningKey(
        bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    )
    assert key.public.hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    sig = key.sign(b"")
    assert sig.hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    verify_signature(key.public, b"", sig)


def test_known_answers_of_a_fixed_seed() -> None:
    assert AUTHORITY.public.hex() == (
        "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    )
    cert = issue_certificate(AUTHORITY, 7, "pi-kitchen", DEVICE.public)
    data = cert.to_bytes()
    assert len(data) == 28 + 1 + 8 + 1 + len("pi-kitchen") + 32 + 64
    assert hashlib.sha256(data).hexdigest() == CERT_SHA256
    assert DeviceCertificate.from_bytes(data) == cert


CERT_SHA256 = "8dd8e58099da106488367d6a2e9812328965125d639f07caecc8d30bf5988bd9"


def test_signatures_verify_and_forgeries_raise() -> None:
    sig = DEVICE.sign(b"message")
    verify_signature(DEVICE.public, b"message", sig)
    with pytest.raises(BadSignature):
        verify_signature(DEVICE.public, b"messagE", sig)
    with pytest.raises(BadSignature):
        verify_signature(AUTHORITY.public, b"message", sig)
    with pytest.raises(BadSignature):
        verify_signature(DEVICE.public, b"message", sig[:-1])
    with pytest.raises(BadSignature):
        verify_signature(b"\x00" * 31, b"message", sig)


def test_certificates_bind_the_authority_the_id_and_the_key() -> None:
    cert = issue_certificate(AUTHORITY, 7, "pi-kitchen", DEVICE.public)
    verify_certificate(AUTHORITY.public, cert)
    verify_certificate(AUTHORITY.public, cert, device_id=7)
    with pytest.raises(CertificateError, match="presented as device 8"):
        verify_certificate(AUTHORITY.public, cert, device_id=8)
    rogue = SigningKey.generate(DeterministicRandom(b"rogue"))
    with pytest.raises(CertificateError, match="pinned enrollment authority"):
        verify_certificate(rogue.public, cert)
    other_key = DeviceCertificate(7, "pi-kitchen", rogue.public, cert.signature)
    with pytest.raises(CertificateError):
        verify_certificate(AUTHORITY.public, other_key)
    renamed = DeviceCertificate(7, "pi-garage", DEVICE.public, cert.signature)
    with pytest.raises(CertificateError):
        verify_certificate(AUTHORITY.public, renamed)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d[:-1],
        lambda d: d + b"\x00",
        lambda d: b"X" + d[1:],
        lambda d: d[:28] + b"\x02" + d[29:],
    ],
    ids=["short", "long", "label", "version"],
)
def test_damaged_certificate_bytes_raise(mangle) -> None:  # type: ignore[no-untyped-def]
    data = issue_certificate(AUTHORITY, 7, "pi", DEVICE.public).to_bytes()
    with pytest.raises(CertificateError):
        DeviceCertificate.from_bytes(mangle(data))


def test_an_identity_checks_its_parts_agree() -> None:
    cert = issue_certificate(AUTHORITY, 7, "pi", DEVICE.public)
    Identity(DEVICE, cert, AUTHORITY.public)
    with pytest.raises(CertificateError, match="different enrollments"):
        Identity(AUTHORITY, cert, AUTHORITY.public)
    with pytest.raises(CertificateError):
        Identity(DEVICE, cert, DEVICE.public)
    with pytest.raises(CertificateError):
        SigningKey(b"short")
    assert issubclass(CertificateError, SecAggError) and issubclass(BadSignature, SecAggError)


def test_generate_uses_the_injected_rng() -> None:
    a = SigningKey.generate(DeterministicRandom(b"seed"))
    b = SigningKey.generate(DeterministicRandom(b"seed"))
    assert a.public == b.public and a.to_bytes() == b.to_bytes()
    assert "SigningKey(public=" in repr(a) and a.to_bytes().hex() not in repr(a)


def test_a_verifying_key_checks_many_signatures_like_verify_signature() -> None:
    key = VerifyingKey(DEVICE.public)
    assert key.public == DEVICE.public
    for message in (b"", b"a", b"x" * 1000):
        key.verify(message, DEVICE.sign(message))
        with pytest.raises(BadSignature):
            key.verify(message + b"!", DEVICE.sign(message))
    with pytest.raises(BadSignature):
        key.verify(b"a", b"\x00" * 63)
    with pytest.raises(BadSignature):
        VerifyingKey(b"\x01" * 31)


@pytest.mark.parametrize(
    "public",
    [bytes(32), b"\x01" + bytes(31)],  # a point of order 4, and the identity point
    ids=["order-4", "identity"],
)
def test_a_small_order_public_key_is_refused(public: bytes) -> None:
    """Under a small-order key a signature verifies without any secret (for the identity point,
    R = [S]B verifies for every message), so the authority never certifies such a key."""
    with pytest.raises(BadSignature, match="small-order"):
        check_certifiable_key(public)
    with pytest.raises(BadSignature, match="small-order"):
        issue_certificate(SigningKey.generate(), 1, "pi-1", public)
    check_certifiable_key(SigningKey.generate().public)  # a real key passes
