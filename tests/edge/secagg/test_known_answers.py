"""Known-answer vectors of the secure-aggregation crypto and encodings (issue 16, item 5).

A Pi on an old pifed and a coordinator on a new one must agree byte for byte on every value
below, so each one is pinned as hex computed once from the code and written here literally.
Long outputs are pinned by their length, first bytes and SHA-256. Everything goes through our
modules (pycryptodome underneath); the only extra primitive is ``hashlib.sha256`` to fingerprint
outputs. Where the protocol draws randomness, a seeded :class:`DeterministicRandom` is injected.

If one of these fails, the change breaks the wire/crypto compatibility between releases: either
revert it, or bump the protocol version (the ``pifed-secagg/v1`` labels and the message version
byte) so old and new peers refuse each other cleanly, and then re-pin the vectors. The config
digest and JSON, the session id and the wire messages are in ``test_known_answers_wire.py``.
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest

from edge.secagg import DeterministicRandom
from edge.secagg.aead import associated_data, open_sealed, seal
from edge.secagg.keys import X25519KeyPair, derive_key
from edge.secagg.masking import pairwise_seed
from edge.secagg.prg import expand
from edge.secagg.quantize import QuantisationParams, dequantise, quantise
from edge.secagg.shamir import ShareCombiner, combine_shares, split_secret
from edge.secagg.share_sealing import SHARE_KEY_INFO, share_key_info
from edge.secagg.stages import Stage

SEED = bytes(range(32))
SESSION = bytes(range(64, 96))
# RFC 7748, Sec. 6.1: Alice's and Bob's X25519 key pairs and their shared secret.
ALICE_SK = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PK = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
BOB_SK = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
BOB_PK = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
RFC7748_SHARED = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")


def fingerprint(data: bytes) -> tuple[int, str, str]:
    """(length, first 16 bytes as hex, SHA-256 hex) of a long output."""
    return len(data), data[:16].hex(), hashlib.sha256(data).hexdigest()


# -- PRG (mask expansion) --------------------------------------------------------------------------

# Incompatible: any change to the key (the whole 32-byte seed), the CTR nonce (empty) or counter
# start (0), the word order (little-endian), the storage word per bit width, or the masking of
# the low bit_width bits -- the masks would no longer cancel between old and new clients.
# fmt: off
PRG_VECTORS = [
    # (seed, length, bit_width, (bytes of the LE words, their first 16 bytes, their sha256))
    (SEED, 64, 32, (256, "f29000b62a499fd0a9f39a6add2e7780",
                    "370a4a4fbd20d692ad16fa4398a04eaa877362640c49b474f76bacd8d46acdb1")),
    (SEED, 64, 8, (64, "f29000b62a499fd0a9f39a6add2e7780",
                   "0d0eaef894b69d1bcd89ef867ebb79d8faf441f6ce2784f24c3d84c5fe979485")),
    (SEED, 64, 16, (128, "f29000b62a499fd0a9f39a6add2e7780",
                    "91c07e67f62474b96b75cac85c49deb7a46399285ce251f119cf33635893ab07")),
    (SEED, 64, 24, (256, "f29000002a499f00a9f39a00dd2e7700",
                    "0d11d9274a840cd86a75609249a6fe89b0b6849c2190a8ecd2f8911df9596b01")),
    (SEED, 64, 64, (512, "f29000b62a499fd0a9f39a6add2e7780",
                    "f942ff4917a7866f06adeecde5cc9ee5e1d2e1dbfc6603e443972f3c77a5241a")),
    (SEED, 64, 63, (512, "f29000b62a499f50a9f39a6add2e7700",
                    "29e99b308f2a3ddd380370bba0e7be9e56f60fe6b911b944014b627c39eb645f")),
    (bytes(range(32, 64)), 1000, 32, (4000, "f34744ebcd337f209c19e3ac13d82dec",
                    "355e5ab370d9487a19210670711af8c16662d3b7d3923ee0a167e67b12814f3e")),
]
# fmt: on


def prg_output(seed: bytes, length: int, bit_width: int) -> tuple[int, str, str]:
    words = expand(seed, length, bit_width)
    return fingerprint(words.astype(words.dtype.newbyteorder("<")).tobytes())


@pytest.mark.parametrize(
    ("seed", "length", "bit_width", "expected"),
    PRG_VECTORS,
    ids=[f"seed{v[0][0]}-len{v[1]}-k{v[2]}" for v in PRG_VECTORS],
)
def test_prg_expansion_known_answers(
    seed: bytes, length: int, bit_width: int, expected: tuple[int, str, str]
) -> None:
    assert prg_output(seed, length, bit_width) == expected


# Incompatible only for reproducibility (seeded tests and benchmarks, the Shamir self-test seed),
# not for the wire: a change to the domain label, the key hash or the AES-CTR stream.
def test_deterministic_random_known_answer() -> None:
    rng = DeterministicRandom(b"pifed-kat")
    assert rng(32).hex() == "a028bb703ea3b9f8d4843c45d37f2ed32a8e3f50f8a4d0de87ff4c424eb0594d"
    # The stream continues; it never restarts.
    assert rng(16).hex() == "411e0e594268f6b6f89ad8030c3b4096"


# -- X25519 and HKDF (every key derivation) --------------------------------------------------------


# Incompatible: using other curve code or an encoding other than the raw RFC 7748 u-coordinate.
def test_x25519_matches_rfc7748() -> None:
    alice, bob = X25519KeyPair(ALICE_SK), X25519KeyPair(BOB_SK)
    assert (alice.public, bob.public) == (ALICE_PK, BOB_PK)
    # agree() is HKDF over the raw RFC 7748 shared secret: no hashing or reordering before it.
    info = b"pifed-kat"
    assert alice.agree(BOB_PK, salt=SESSION, info=info) == derive_key(
        RFC7748_SHARED, salt=SESSION, info=info
    )
    assert bob.agree(ALICE_PK, salt=SESSION, info=info) == derive_key(
        RFC7748_SHARED, salt=SESSION, info=info
    )


# Incompatible: swapping salt and info, another hash, another output length, or num_keys/context
# plumbing that changes the bytes. RFC 5869 test case 1 (the first 32 of its 42 OKM bytes).
def test_hkdf_matches_rfc5869_test_case_1() -> None:
    okm = derive_key(
        bytes.fromhex("0b" * 22),
        salt=bytes.fromhex("000102030405060708090a0b0c"),
        info=bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"),
    )
    assert okm.hex() == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"


# Incompatible: changing a purpose label, the id packing (u32 little-endian; sorted pair for
# masks, ordered sender -> recipient for share keys) or the salt (the session id). The labels
# are written out literally so a renamed constant fails here.
HKDF_VECTORS = [
    # (purpose, info, key derived from the RFC 7748 shared secret with salt SESSION)
    (
        "pairwise mask 1-2",
        b"pifed-secagg/v1 pairwise-mask" + struct.pack("<II", 1, 2),
        "152c942b75ed9a5b3f9c8cebd999424b95a16f96fced0751ca59c9c2acff4a14",
    ),
    (
        "share key 1->2",
        b"pifed-secagg/v1 share-key" + struct.pack("<II", 1, 2),
        "99de113fcab1077927a87f3d2bb80e5e0dee9951539a5164486db210eabfab6b",
    ),
    (
        "share key 2->1",
        b"pifed-secagg/v1 share-key" + struct.pack("<II", 2, 1),
        "952630ac37b67e9655e8fc7366c1d506c59c368b153cd38ac319e1b6290167b2",
    ),
]


@pytest.mark.parametrize(
    ("purpose", "info", "expected"), HKDF_VECTORS, ids=[v[0] for v in HKDF_VECTORS]
)
def test_hkdf_key_derivation_known_answers(purpose: str, info: bytes, expected: str) -> None:
    assert derive_key(RFC7748_SHARED, salt=SESSION, info=info).hex() == expected
    alice, bob = X25519KeyPair(ALICE_SK), X25519KeyPair(BOB_SK)
    if purpose.startswith("pairwise"):
        # Both ends derive s_uv through masking.pairwise_seed, whichever id is their own.
        assert pairwise_seed(alice, 1, 2, BOB_PK, SESSION).hex() == expected
        assert pairwise_seed(bob, 2, 1, ALICE_PK, SESSION).hex() == expected
    else:
        sender, recipient = struct.unpack("<II", info[-8:])
        assert SHARE_KEY_INFO + info[-8:] == share_key_info(sender, recipient) == info
        assert alice.agree(BOB_PK, salt=SESSION, info=info).hex() == expected


# -- AEAD ------------------------------------------------------------------------------------------

SHARE_PLAINTEXT = struct.pack("<II", 1, 2) + bytes(range(64))


# Incompatible: the AAD domain label or layout (session, stage u8, sender u32, recipient u32),
# the stage numbers, the cipher/mode, the tag length or its position (appended). The protocol
# draws each nonce at random and sends it along, so the vector fixes the nonce.
# fmt: off
AEAD_VECTORS = [
    # (key, nonce, plaintext, (stage, sender, recipient), aad hex, sealed fingerprint)
    (SEED, bytes(range(12)), SHARE_PLAINTEXT, (Stage.SHARE_KEYS, 1, 2),
     "70696665642d7365636167672f76312061656164"  # b"pifed-secagg/v1 aead"
     "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"  # session id
     "01" "01000000" "02000000",  # stage u8, sender u32, recipient u32
     (88, "4602d61bc7e5c21b8d409588b5ec7e6a",
      "657d819e1101111d645198a756b3f28d9728f77f46ee30af7bb0164113f9050f")),
    (SEED, bytes(12), b"", (Stage.CONSISTENCY_CHECK, 2**32 - 1, 7),
     "70696665642d7365636167672f76312061656164"
     "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
     "03" "ffffffff" "07000000",
     (16, "b550fd4ae764917f2a1ec00f6547e4b3",
      "21b5e55fb2b4c4e71a9ec93e5919360119e47d7fc78fda829642159b62866629")),
]
# fmt: on


@pytest.mark.parametrize(
    ("key", "nonce", "plaintext", "binding", "aad", "sealed"),
    AEAD_VECTORS,
    ids=["share-keys-1-2", "consistency-empty"],
)
def test_aead_seal_known_answers(
    key: bytes,
    nonce: bytes,
    plaintext: bytes,
    binding: tuple[Stage, int, int],
    aad: str,
    sealed: tuple[int, str, str],
) -> None:
    # version 2 inserted CONSISTENCY_CHECK (3) before UNMASKING (now 4)
    assert [int(s) for s in Stage] == [0, 1, 2, 3, 4]
    data = associated_data(SESSION, *binding)
    assert data.hex() == aad
    out = seal(key, nonce, plaintext, data)
    assert fingerprint(out) == sealed
    assert open_sealed(key, nonce, out, data) == plaintext


# -- Shamir ----------------------------------------------------------------------------------------

SHAMIR_SECRET = bytes(range(100, 132))
# Incompatible: the field (GF(2^128) as pycryptodome's Shamir), the byte order of a block, the
# split of a 32-byte secret into two blocks and their concatenation, the index of holder i (i+1),
# or the order coefficients are drawn from the rng (which the reproducible rounds rely on).
SHAMIR_SHARES = [
    "0e4ef6ae99c3a768f8f60656fcf9d0997dbecb2658fe8f38a40399c305d4c6c6",
    "1650f469855dd0d756f38fa4ea385c306d188b126aaae2b7861678540958ade7",
    "7c7b64a074f71dd4c268e79d66b0feda64d336434a2d17f45e689fe88c0de9a2",
    "19848c0e8b849dff57f06b1a498281a76d4493a012af82cfa2f057629efd43f3",
    "73af1cc77a2e50fcc36b0323c50a234d648f2ef13228778c7a8eb0de1ba807b6",
]


def test_shamir_split_known_answer() -> None:
    shares = split_secret(SHAMIR_SECRET, 3, 5, DeterministicRandom(b"pifed-kat shamir"))
    assert [s.hex() for s in shares] == SHAMIR_SHARES


@pytest.mark.parametrize("indices", [(1, 2, 3), (2, 4, 5), (1, 3, 5)])
def test_shamir_combine_of_fixed_shares(indices: tuple[int, int, int]) -> None:
    # Decoding direction: the pinned share bytes, held by any 3 of the 5 holders, give the secret.
    shares = {i: bytes.fromhex(SHAMIR_SHARES[i - 1]) for i in indices}
    assert combine_shares(shares, 3) == SHAMIR_SECRET
    assert ShareCombiner(indices).combine(shares) == SHAMIR_SECRET


# -- quantisation ----------------------------------------------------------------------------------

UPDATE = np.array([0.5, -0.25, 0.1, 1.5, -2.0, 0.0, 1e-9, -0.999999])
# Incompatible: the largest-scale rule, clipping, weighting, the stochastic rounding (8 rng bytes
# per coordinate, top 53 bits), two's complement mod 2^k, or the order/meaning of the two extra
# words (weight, then clip count) -- the server would decode a wrong sum.
# fmt: off
QUANTISE_VECTORS = [
    # (bit_width, num_clients, clip_bound, max_weight, num_examples, scale.hex(), words)
    (32, 3, 1.0, 1000, 10, "0x1.5d867c3958106p+19",
     [3579139, 4293177726, 715828, 7158279, 4287809017, 0, 0, 4287809024, 10, 2]),
    (16, 5, 2.0, 50, 70, "0x1.061eb851eb852p+6",
     [1638, 64716, 328, 4915, 58983, 0, 0, 62259, 50, 0]),
    (64, 100, 1.0, 1000, 1, "0x1.0624dd2f1a9fcp+32",
     [2199023255, 18446744072610039988, 439804652, 4398046511, 18446744069311505105, 0, 4,
      18446744069311509503, 1, 2]),
]
# fmt: on


@pytest.mark.parametrize(
    ("bit_width", "num_clients", "clip_bound", "max_weight", "num_examples", "scale", "words"),
    QUANTISE_VECTORS,
    ids=[f"k{v[0]}-n{v[1]}" for v in QUANTISE_VECTORS],
)
def test_quantise_known_answers(
    bit_width: int,
    num_clients: int,
    clip_bound: float,
    max_weight: int,
    num_examples: int,
    scale: str,
    words: list[int],
) -> None:
    params = QuantisationParams.with_largest_scale(
        bit_width=bit_width,
        clip_bound=clip_bound,
        max_weight=max_weight,
        num_clients=num_clients,
        num_coordinates=UPDATE.shape[0],
    )
    assert params.scale.hex() == scale
    out = quantise(UPDATE, num_examples, params, DeterministicRandom(b"pifed-kat quantise"))
    assert out.words.tolist() == words
    decoded = dequantise(np.array(words, dtype=params.dtype), params, 1)
    weight = min(num_examples, max_weight)
    assert (
        (decoded.weight_sum, decoded.clip_count)
        == (weight, words[-1])
        == (out.weight, out.clip_count)
    )
    clipped = np.clip(UPDATE, -clip_bound, clip_bound) * weight
    assert np.all(np.abs(decoded.weighted_sum - clipped) < params.error_bound)
