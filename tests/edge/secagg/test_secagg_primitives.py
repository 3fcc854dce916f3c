"""Crypto layer: randomness, X25519 keys, AES-GCM binding, the mask PRG (case 6) and case 5."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge.secagg import DeterministicRandom, system_random
from edge.secagg.aead import associated_data, open_sealed, seal
from edge.secagg.errors import DecryptionError, InvalidPublicKey
from edge.secagg.keys import X25519KeyPair, validate_public_key
from edge.secagg.prg import expand, storage_dtype
from edge.secagg.stages import Stage

P25519 = 2**255 - 19
# RFC 7748 / Bernstein's list of small-order u-coordinates, plus the non-canonical p and p + 1.
LOW_ORDER_U = [
    0,
    1,
    325606250916557431795983626356110631294008115727848805560023387167927233504,
    39382357235489614581723060781553021112529911719440698176882885853963445705823,
    P25519 - 1,
    P25519,
    P25519 + 1,
]


def test_deterministic_random_repeats_per_seed_and_continues_its_stream() -> None:
    a, b = DeterministicRandom(b"seed"), DeterministicRandom(b"seed")
    first = a(40)
    assert first == b(40)
    assert a(40) != first
    assert DeterministicRandom(b"seeD")(40) != first


@pytest.mark.parametrize("bad", [b"", "text", 5])
def test_deterministic_random_rejects_bad_seeds(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        DeterministicRandom(bad)  # type: ignore[arg-type]


def test_system_random_returns_fresh_bytes_and_checks_count() -> None:
    assert len(system_random(32)) == 32
    assert system_random(32) != system_random(32)
    with pytest.raises(ValueError):
        system_random(-1)


def test_x25519_agreement_is_symmetric_and_bound_to_salt_and_info() -> None:
    rng = DeterministicRandom(b"keys")
    alice, bob = X25519KeyPair.generate(rng), X25519KeyPair.generate(rng)
    k1 = alice.agree(bob.public, salt=b"s1", info=b"i")
    assert k1 == bob.agree(alice.public, salt=b"s1", info=b"i")
    assert len(k1) == 32
    assert k1 != alice.agree(bob.public, salt=b"s2", info=b"i")
    assert k1 != alice.agree(bob.public, salt=b"s1", info=b"j")
    assert alice.secret.hex() not in repr(alice)


@pytest.mark.parametrize("u", LOW_ORDER_U, ids=lambda u: f"u{u % 10**6}")
def test_low_order_or_non_canonical_public_key_is_rejected(u: int) -> None:
    with pytest.raises(InvalidPublicKey):
        validate_public_key(u.to_bytes(32, "little"))
    alice = X25519KeyPair.generate(DeterministicRandom(b"k"))
    with pytest.raises(InvalidPublicKey):
        alice.agree(u.to_bytes(32, "little"), salt=b"", info=b"")


@pytest.mark.parametrize("garbage", [b"", b"\x09" * 31, b"\x09" * 33, b"\xff" * 32])
def test_garbage_public_key_is_rejected(garbage: bytes) -> None:
    with pytest.raises(InvalidPublicKey):
        validate_public_key(garbage)


def _sealed() -> tuple[bytes, bytes, bytes, bytes]:
    key, nonce = bytes(range(32)), bytes(12)
    aad = associated_data(b"S" * 32, Stage.SHARE_KEYS, 1, 2)
    return key, nonce, aad, seal(key, nonce, b"secret shares", aad)


def test_aead_round_trip() -> None:
    key, nonce, aad, sealed = _sealed()
    assert open_sealed(key, nonce, sealed, aad) == b"secret shares"


@pytest.mark.parametrize("where", ["ciphertext", "tag"])
def test_tampered_ciphertext_or_tag_raises_decryption_error(where: str) -> None:
    key, nonce, aad, sealed = _sealed()
    pos = 0 if where == "ciphertext" else len(sealed) - 1
    tampered = bytearray(sealed)
    tampered[pos] ^= 1
    with pytest.raises(DecryptionError):
        open_sealed(key, nonce, bytes(tampered), aad)


@pytest.mark.parametrize(
    "aad",
    [
        associated_data(b"T" * 32, Stage.SHARE_KEYS, 1, 2),  # another session
        associated_data(b"S" * 32, Stage.UNMASKING, 1, 2),  # another stage
        associated_data(b"S" * 32, Stage.SHARE_KEYS, 2, 1),  # reversed direction
        associated_data(b"S" * 32, Stage.SHARE_KEYS, 1, 3),  # redirected to another client
    ],
    ids=["session", "stage", "direction", "recipient"],
)
def test_ciphertext_does_not_open_under_another_binding(aad: bytes) -> None:
    key, nonce, _, sealed = _sealed()
    with pytest.raises(DecryptionError):
        open_sealed(key, nonce, sealed, aad)


def test_ciphertext_does_not_open_under_a_wrong_key() -> None:
    _, nonce, aad, sealed = _sealed()
    with pytest.raises(DecryptionError):
        open_sealed(bytes(32), nonce, sealed, aad)


# -- case 6: PRG ---------------------------------------------------------------------------------


def test_prg_is_deterministic_per_seed_and_distinct_across_seeds() -> None:
    seed = bytes(range(32))
    assert np.array_equal(expand(seed, 1000, 32), expand(seed, 1000, 32))
    other = bytes(range(1, 33))
    assert np.count_nonzero(expand(seed, 1000, 32) == expand(other, 1000, 32)) < 5


def test_prg_uses_every_bit_of_the_256_bit_seed() -> None:
    seed = bytes(range(32))
    base = expand(seed, 8, 32)
    outputs = {base.tobytes()}
    for bit in range(256):
        flipped = bytearray(seed)
        flipped[bit // 8] ^= 1 << (bit % 8)
        outputs.add(expand(bytes(flipped), 8, 32).tobytes())
    assert len(outputs) == 257


def test_prg_refuses_short_seeds_such_as_32_bit_ones() -> None:
    with pytest.raises(ValueError):
        expand(b"\x01\x02\x03\x04", 10, 32)


@pytest.mark.parametrize("bit_width", [8, 12, 32, 64])
def test_prg_is_uniform_over_the_ring(bit_width: int) -> None:
    words = expand(bytes(32), 200_000, bit_width).astype(np.uint64)
    assert words.dtype == np.uint64 and words.shape == (200_000,)
    assert int(words.max()) < 2**bit_width
    # Chi-square over 256 buckets of the top 8 bits (for k = 8 every value is its own bucket).
    buckets = np.bincount((words >> np.uint64(bit_width - 8)).astype(np.int64), minlength=256)
    expected = words.shape[0] / 256
    chi2 = float(((buckets - expected) ** 2 / expected).sum())
    # 255 degrees of freedom: mean 255, sd ~22.6; 400 is beyond 6 sd.
    assert chi2 < 400
    # The low bit is fair too (a masked-down word must keep the low bits uniform).
    ones = int((words & np.uint64(1)).sum())
    assert abs(ones - 100_000) < 6 * math.sqrt(50_000)


def test_storage_dtype_is_the_smallest_little_endian_word() -> None:
    assert storage_dtype(8) == np.dtype("<u1")
    assert storage_dtype(20) == np.dtype("<u4")
    assert storage_dtype(64) == np.dtype("<u8")
    with pytest.raises(ValueError):
        storage_dtype(65)
