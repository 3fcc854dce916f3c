"""Known-answer vectors of what binds a session and what goes on the wire (issue 16, item 5).

The configuration digest and its JSON form, the session id, the self-mask commitment and the
byte encoding (``to_bytes()``) of every secure-aggregation message, each built from fixed inputs
and pinned as hex computed once from the code. The crypto primitives are pinned in
``test_known_answers.py``; see its docstring for what to do when a vector fails.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pytest

from edge.secagg import SecAggConfig, StageTimeouts
from edge.secagg.messages import (
    AdvertiseKeysReply,
    AdvertiseKeysRequest,
    ConsistencyCheckReply,
    ConsistencyCheckRequest,
    EncryptedShare,
    MaskedInputReply,
    MaskedInputRequest,
    Message,
    ShareKeysReply,
    ShareKeysRequest,
    UnmaskReply,
    UnmaskRequest,
    decode_message,
)
from edge.secagg.session import (
    SHARE_OF_KEY,
    SHARE_OF_SEED,
    advertise_statement,
    consistency_statement,
    self_mask_commitment,
    session_id,
    share_commitment,
)

NONCE = bytes(range(32))
DIGEST = bytes(range(32, 64))
SESSION = bytes(range(64, 96))
ADVERTISED = [(cid, bytes([0x10 + cid]) * 32, bytes([0x20 + cid]) * 32) for cid in (1, 2, 3)]


def fingerprint(data: bytes) -> tuple[int, str, str]:
    """(length, first 16 bytes as hex, SHA-256 hex) of a long output."""
    return len(data), data[:16].hex(), hashlib.sha256(data).hexdigest()


# -- configuration ---------------------------------------------------------------------------------

# Protocol version 2 (issue 19) changed every digest on purpose: the label is v2 and the variant
# (active) and the colluder bound c are bound.
# Incompatible: the domain label, the packing of any field, adding/removing a field, or a change
# to how the default threshold or the largest safe scale is derived -- old clients would refuse
# the new coordinator's AdvertiseKeysRequest (config digest mismatch). Timeouts are not bound.
CONFIG_VECTORS: list[tuple[dict[str, Any], int, str, str]] = [
    # (constructor arguments, t, scale.hex(), digest)
    (
        {"client_ids": (1, 2, 3), "vector_lengths": (3,)},
        3,
        "0x1.5d867c3958106p+19",
        "906a466dbb52a73f1a2db25445cbd848cb7a3a741b182cd26275ade54ea1c187",
    ),
    (
        {
            "client_ids": (5, 4, 3, 2, 1),
            "vector_lengths": (4, 10),
            "threshold": 5,
            "bit_width": 24,
            "clip_bound": 0.5,
            "max_weight": 100,
            "timeouts": StageTimeouts(1.0, 2.0, 3.0, 4.0),
        },
        5,
        "0x1.0624d70a3d70ap+15",
        "e3bf6c390971f8840db08ae4a5831dd94ae7f160fb4a2a7d65d2e57c04e4ef3f",
    ),
    (
        {
            "client_ids": (7, 1000, 2**32 - 1),
            "vector_lengths": (1,),
            "bit_width": 64,
            "scale": 1024.0,
        },
        3,
        "0x1.0000000000000p+10",
        "a26cc2788240057bed01b6743aa12a29dd6faeb70cdac746e2cd2f6a9fb18a56",
    ),
    (
        {
            "client_ids": (1, 2, 3, 4, 5, 6),
            "vector_lengths": (3,),
            "active": False,
            "colluders": 0,
            "threshold": 4,
        },
        4,
        "0x1.5d867c3958106p+18",
        "78e7b3f208de24df4a4d9fdb4763dce1c6e57616dca788ed216e7c6685d82eec",
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "t", "scale", "digest"),
    CONFIG_VECTORS,
    ids=["default", "explicit", "k64-scale", "semi-honest"],
)
def test_config_digest_known_answers(
    kwargs: dict[str, Any], t: int, scale: str, digest: str
) -> None:
    config = SecAggConfig(**kwargs)
    assert config.t == t
    assert config.quantisation.scale.hex() == scale
    assert config.digest.hex() == digest


def test_config_digest_ignores_timeouts() -> None:
    base = SecAggConfig(client_ids=(1, 2, 3), vector_lengths=(3,))
    other = SecAggConfig(
        client_ids=(1, 2, 3), vector_lengths=(3,), timeouts=StageTimeouts(1, 1, 1, 1)
    )
    assert base.digest == other.digest


# Incompatible: renaming a key, changing a value's JSON type (clip_bound or timeouts from float to
# int, threshold from null to t), the order of the timeouts, or when "scale" is written -- an
# old edge client's from_dict would reject or misread the new coordinator's configuration.
CONFIG_JSON_VECTORS = [
    (
        CONFIG_VECTORS[0][0],
        '{"bit_width":32,"client_ids":[1,2,3],"clip_bound":1.0,"max_weight":1000,"threshold":null,"timeouts":[30.0,60.0,300.0,60.0],"vector_lengths":[3]}',
    ),
    (
        CONFIG_VECTORS[1][0],
        '{"bit_width":24,"client_ids":[1,2,3,4,5],"clip_bound":0.5,"max_weight":100,"threshold":5,"timeouts":[1.0,2.0,3.0,4.0],"vector_lengths":[4,10]}',
    ),
    (
        CONFIG_VECTORS[2][0],
        '{"bit_width":64,"client_ids":[7,1000,4294967295],"clip_bound":1.0,"max_weight":1000,"scale":1024.0,"threshold":null,"timeouts":[30.0,60.0,300.0,60.0],"vector_lengths":[1]}',
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "expected"), CONFIG_JSON_VECTORS, ids=["default", "explicit", "k64-scale"]
)
def test_config_json_known_answers(kwargs: dict[str, Any], expected: str) -> None:
    config = SecAggConfig(**kwargs)
    assert json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":")) == expected
    # Decoding direction: the pinned text gives back the same configuration.
    decoded = SecAggConfig.from_dict(json.loads(expected))
    assert decoded == config
    assert decoded.digest == config.digest


# -- session binding -------------------------------------------------------------------------------


# Incompatible: the domain label, the field order (digest, nonce, keys), the id packing or the
# key-list order (sorted by id) -- peers would derive different session ids, and every AEAD and
# HKDF bound to it would fail.
def test_session_id_known_answer() -> None:
    expected = "931f418071c4cb79091a9d97b66aeb32c6fd784347081159e33b10809cc7910a"
    assert session_id(DIGEST, NONCE, ADVERTISED).hex() == expected
    assert session_id(DIGEST, NONCE, reversed(ADVERTISED)).hex() == expected


# Incompatible: the domain label or the packing of (session, id, seed) -- the server would reject
# every honest client's reconstructed self-mask seed.
def test_self_mask_commitment_known_answer() -> None:
    assert (
        self_mask_commitment(SESSION, 2, NONCE).hex()
        == "a8a9de49606a35e596ffdab66b50f9f84cd142c480cc2fdfc91e767f8a58a3d3"
    )


# Incompatible: the label or packing -- the server would blame honest responders' shares.
def test_share_commitment_known_answer() -> None:
    assert (
        share_commitment(SESSION, 2, 3, SHARE_OF_SEED, NONCE).hex()
        == "18e35c14c90d34feacdc26da861dd34f1c2c4a0d52c574ed160098786f64aaac"
    )
    assert share_commitment(SESSION, 2, 3, SHARE_OF_KEY, NONCE) != share_commitment(
        SESSION, 2, 3, SHARE_OF_SEED, NONCE
    )


# Incompatible: the labels or packing of the signed statements -- every peer's signature fails.
def test_signed_statements_known_answers() -> None:
    advertised = advertise_statement(DIGEST, NONCE, 2, b"\x12" * 32, b"\x22" * 32)
    assert hashlib.sha256(advertised).hexdigest() == (
        "c8ef330d5acf19b4ae7fa11544b135357c431ec13fa41ade73905d23dc446d4e"
    )
    assert consistency_statement(SESSION, (3, 1)).hex() == (
        "70696665642d7365636167672f763220636f6e73697374656e637900"  # label, NUL
        + SESSION.hex()
        + "02000000" "01000000" "03000000"  # count 2, ids sorted
    )  # fmt: skip


# -- wire messages ---------------------------------------------------------------------------------

SHARES = (
    EncryptedShare(2, bytes(range(12)), bytes(range(88)), b"\x4b" * 32, b"\x5b" * 32),
    EncryptedShare(3, bytes(range(12, 24)), b"\xc3" * 17, b"\x4c" * 32, b"\x5c" * 32),
)
SIGNED = tuple((bytes([0xC0 + cid]) * 5, bytes([0xD0 + cid]) * 64) for cid in (1, 2, 3))
VECTOR = np.array([0, 1, 2**31, 2**32 - 1], dtype=np.uint32)

# Incompatible: the magic, the version byte, a type number, the order, width or byte order of
# any field, or how a list is counted -- an old peer would raise MalformedMessage (or, worse,
# misread a field). Every message type has at least one vector; all are built from fixed inputs,
# and the round trip through decode_message pins the decoding of the same bytes.
# fmt: off
MESSAGE_VECTORS: list[tuple[str, Message, tuple[int, str, str]]] = [
    # (name, message, (length, first 16 bytes, sha256) of message.to_bytes())
    ("AdvertiseKeysRequest", AdvertiseKeysRequest(NONCE, DIGEST),
     (69, "5053410201000102030405060708090a",
      "4e4bdfa19d7f9080d08ee486e005637479ce95f750f1625a1a74f9681a0b1db1")),
    ("AdvertiseKeysReply", AdvertiseKeysReply(2, NONCE, b"\x12" * 32, b"\x22" * 32),
     (113, "50534102020200000000010203040506",
      "a9bfe1aca27d6a779526fae213371ae38b9121b91b06cc51e5b080349f6ea758")),
    ("AdvertiseKeysReply/signed", AdvertiseKeysReply(2, NONCE, b"\x12" * 32, b"\x22" * 32, b"\xc2" * 5, b"\xd2" * 64),  # noqa: E501
     (182, "50534102020200000000010203040506",
      "1b7aae371f42f570bc2ae447146e609d489ce4b371cb13a563b9b6542d842afd")),
    ("ShareKeysRequest", ShareKeysRequest(NONCE, DIGEST, tuple(ADVERTISED)),
     (281, "5053410203000102030405060708090a",
      "7cc9015291000a2e754ac1fb9cde5cd7cadca42be3a875b9c9c9253e30b4279d")),
    ("ShareKeysRequest/signed", ShareKeysRequest(NONCE, DIGEST, tuple(ADVERTISED), SIGNED),
     (512, "5053410203000102030405060708090a",
      "1e81766f5d43f16e0a36ba7c934a4276c3cbc205ba9a5699c826c5af70c62a8d")),
    ("ShareKeysRequest/empty", ShareKeysRequest(NONCE, DIGEST, ()),
     (77, "5053410203000102030405060708090a",
      "475678cfe52e11b3a634d9f4f92bfcc59076651477cdb5aa99fb6250ed63a77a")),
    ("ShareKeysReply", ShareKeysReply(1, SESSION, DIGEST, SHARES),
     (350, "50534102040100000040414243444546",
      "44aab91c63bd9ad93fe3a0ee17e1cd14c6acd7ad60732a04fe7328606092680a")),
    ("MaskedInputRequest", MaskedInputRequest(1, SESSION, SHARES[::-1]),
     (318, "50534102050100000040414243444546",
      "6ed9cab2651de686684ea0a955d468ea036b05f771f3f4218616a84239375c55")),
    ("MaskedInputReply/u8", MaskedInputReply(3, SESSION, VECTOR.astype(np.uint8)),
     (54, "50534102060300000040414243444546",
      "3a2df4267526d741afc2cb57aec9e2775bcf57b48cb04f9b82ce0f267ba4ac13")),
    ("MaskedInputReply/u16", MaskedInputReply(3, SESSION, VECTOR.astype(np.uint16)),
     (58, "50534102060300000040414243444546",
      "a28ffb13d5a6f13d5c337526cd90489935bf54b2e989431d57bf4f1b26ea70ef")),
    ("MaskedInputReply/u32", MaskedInputReply(3, SESSION, VECTOR),
     (66, "50534102060300000040414243444546",
      "f64a48b1153de38489f5b2897a05d6999f3d897b09c295e26ace3c7e7d4734b2")),
    ("MaskedInputReply/u64", MaskedInputReply(3, SESSION, VECTOR.astype(np.uint64) << 31),
     (82, "50534102060300000040414243444546",
      "43dbed450aa86174f67c9911c8a8722eb85a466a5331afbf0a9dd98b1e086a28")),
    ("MaskedInputReply/accused", MaskedInputReply(3, SESSION, VECTOR, (1, 2)),
     (74, "50534102060300000040414243444546",
      "c89b29662c1b3e7765d39c07c98ce94c999581f2eb18d14ab24e3fe4c1650b31")),
    ("ConsistencyCheckRequest", ConsistencyCheckRequest(SESSION, (1, 2, 3)),
     (53, "5053410209404142434445464748494a",
      "d93b7e67c2b92cb2b7bd6b34ed446b3f17c3d0fceea1037dcce84547a1a25f6b")),
    ("ConsistencyCheckReply", ConsistencyCheckReply(2, SESSION, b"\xe2" * 64),
     (109, "505341020a0200000040414243444546",
      "bdcbe3d9e43bed7f8c0fa722e091cc94f282d290445fb4da37f194d83f2feed6")),
    ("UnmaskRequest", UnmaskRequest(SESSION, (1, 3), (2,)),
     (61, "5053410207404142434445464748494a",
      "0fe29655633e9873edfa803e3af529e160ac96d60221e9114fdfd1cb150dcf77")),
    ("UnmaskRequest/signed", UnmaskRequest(SESSION, (1, 3), (2,), ((1, b"\xe1" * 64), (3, b"\xe3" * 64))),  # noqa: E501
     (205, "5053410207404142434445464748494a",
      "7fb7f9376109eb62cd3867d90427826213a4f1e2872675893bc3503ac4db4eef")),
    ("UnmaskReply", UnmaskReply(1, SESSION, ((1, b"\xb1" * 32), (3, b"\xb3" * 32)), ((2, b"\x5a" * 32),)),  # noqa: E501
     (157, "50534102080100000040414243444546",
      "ec36c244479fc624bc127e71ec38a88fb70bfd0b13f4b03d41ed3d7cfbab69b0")),
    ("UnmaskReply/empty", UnmaskReply(1, SESSION, (), ()),
     (49, "50534102080100000040414243444546",
      "24da6a75073c8dea50f0184f4b9c8db4367f2569448755b6d4d7d064dfdfcd5c")),
]
# fmt: on


def test_every_message_type_has_a_vector() -> None:
    kinds = {type(message) for _, message, _ in MESSAGE_VECTORS}
    assert kinds == {
        AdvertiseKeysRequest,
        AdvertiseKeysReply,
        ShareKeysRequest,
        ShareKeysReply,
        MaskedInputRequest,
        MaskedInputReply,
        UnmaskRequest,
        UnmaskReply,
        ConsistencyCheckRequest,
        ConsistencyCheckReply,
    }


@pytest.mark.parametrize(
    ("name", "message", "expected"), MESSAGE_VECTORS, ids=[v[0] for v in MESSAGE_VECTORS]
)
def test_message_encoding_known_answers(
    name: str, message: Message, expected: tuple[int, str, str]
) -> None:
    data = message.to_bytes()
    assert fingerprint(data) == expected
    decoded = decode_message(data)
    assert type(decoded) is type(message)
    assert decoded.to_bytes() == data
    if isinstance(message, MaskedInputReply):
        assert isinstance(decoded, MaskedInputReply)
        assert decoded.vector.dtype == message.vector.dtype
        assert decoded.vector.tolist() == message.vector.tolist()
    else:
        assert decoded == message


# Incompatible: the same as above; the whole of one short message is written out, field by field,
# so a mismatch shows where the layout moved.
def test_unmask_request_bytes_in_full() -> None:
    expected = (
        "505341" "02" "07"  # magic, version 2, type 7
        + SESSION.hex()
        + "02000000" "01000000" "03000000"  # alive: count 2, ids 1 and 3
        + "01000000" "02000000"  # dropped: count 1, id 2
        + "00000000"  # signatures: count 0 (semi-honest)
    )  # fmt: skip
    assert UnmaskRequest(SESSION, (1, 3), (2,)).to_bytes().hex() == expected
    assert decode_message(bytes.fromhex(expected)) == UnmaskRequest(SESSION, (1, 3), (2,))
