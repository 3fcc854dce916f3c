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
from edge.secagg.session import self_mask_commitment, session_id

NONCE = bytes(range(32))
DIGEST = bytes(range(32, 64))
SESSION = bytes(range(64, 96))
ADVERTISED = [(cid, bytes([0x10 + cid]) * 32, bytes([0x20 + cid]) * 32) for cid in (1, 2, 3)]


def fingerprint(data: bytes) -> tuple[int, str, str]:
    """(length, first 16 bytes as hex, SHA-256 hex) of a long output."""
    return len(data), data[:16].hex(), hashlib.sha256(data).hexdigest()


# -- configuration ---------------------------------------------------------------------------------

# Incompatible: the domain label, the packing of any field, adding/removing a field, or a change
# to how the default threshold or the largest safe scale is derived -- old clients would refuse
# the new coordinator's AdvertiseKeysRequest (config digest mismatch). Timeouts are not bound.
CONFIG_VECTORS: list[tuple[dict[str, Any], int, str, str]] = [
    # (constructor arguments, t, scale.hex(), digest)
    (
        {"client_ids": (1, 2, 3), "vector_lengths": (3,)},
        3,
        "0x1.5d867c3958106p+19",
        "80b3c86554dd8ce0ea01eed48a064b17afb61df58d3e13e5c69b58cf2380cda6",
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
        "8eccf066ccc8a34319988693818ed570f75a079e3721a2c25051d1659a855b37",
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
        "e9e2c515891eeff7b6e5cb7236fb9c413e776c422236a5f4b260ca811ad5c68c",
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "t", "scale", "digest"), CONFIG_VECTORS, ids=["default", "explicit", "k64-scale"]
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
    expected = "5b2ea238853c059ce3f4639349629e4cb5b8ef4b976904311b7cb6be02a8150e"
    assert session_id(DIGEST, NONCE, ADVERTISED).hex() == expected
    assert session_id(DIGEST, NONCE, reversed(ADVERTISED)).hex() == expected


# Incompatible: the domain label or the packing of (session, id, seed) -- the server would reject
# every honest client's reconstructed self-mask seed.
def test_self_mask_commitment_known_answer() -> None:
    assert (
        self_mask_commitment(SESSION, 2, NONCE).hex()
        == "35f790e63dff8ec1b8c167524cda1a7ae77e45f2da05a5012eca66b472f2979a"
    )


# -- wire messages ---------------------------------------------------------------------------------

SHARES = (
    EncryptedShare(2, bytes(range(12)), bytes(range(88))),
    EncryptedShare(3, bytes(range(12, 24)), b"\xc3" * 17),
)
VECTOR = np.array([0, 1, 2**31, 2**32 - 1], dtype=np.uint32)

# Incompatible: the magic, the version byte, a type number, the order, width or byte order of
# any field, or how a list is counted -- an old peer would raise MalformedMessage (or, worse,
# misread a field). Every message type has at least one vector; all are built from fixed inputs,
# and the round trip through decode_message pins the decoding of the same bytes.
# fmt: off
MESSAGE_VECTORS: list[tuple[str, Message, tuple[int, str, str]]] = [
    # (name, message, (length, first 16 bytes, sha256) of message.to_bytes())
    ("AdvertiseKeysRequest", AdvertiseKeysRequest(NONCE, DIGEST),
     (69, "5053410101000102030405060708090a",
      "e3bfb4a09a28d37ef49d80a93fbf2ae6f403186844cf625738d42319f12aadba")),
    ("AdvertiseKeysReply", AdvertiseKeysReply(2, NONCE, b"\x12" * 32, b"\x22" * 32),
     (105, "50534101020200000000010203040506",
      "ca610300fe7bccff79765293a2eb3de14ba7bc9958669c946a78e3fbeea35f5e")),
    ("ShareKeysRequest", ShareKeysRequest(NONCE, DIGEST, tuple(ADVERTISED)),
     (277, "5053410103000102030405060708090a",
      "6abef9d8e5f74c342c1ec96746b49822b7fb8677fd0530d855c63403c5ba92c3")),
    ("ShareKeysRequest/empty", ShareKeysRequest(NONCE, DIGEST, ()),
     (73, "5053410103000102030405060708090a",
      "d1a62915145d5b3201ba8ce336eb9205b5486cb03af7abfc4c6022a3fb661910")),
    ("ShareKeysReply", ShareKeysReply(1, SESSION, DIGEST, SHARES),
     (222, "50534101040100000040414243444546",
      "2fd2735c6c31c5a802e2b3ed1d57783f8f7234c05979f717b63744f25ebcf4c6")),
    ("MaskedInputRequest", MaskedInputRequest(1, SESSION, SHARES[::-1]),
     (190, "50534101050100000040414243444546",
      "20107dfa8f1df9eeb88349db9251eb7f6590d0149f457467bab2f8f7e32682d9")),
    ("MaskedInputReply/u8", MaskedInputReply(3, SESSION, VECTOR.astype(np.uint8)),
     (50, "50534101060300000040414243444546",
      "cb601ec0e9379e3483893298e7d266ae16ac91531b86e88e49816881b3d2cf93")),
    ("MaskedInputReply/u16", MaskedInputReply(3, SESSION, VECTOR.astype(np.uint16)),
     (54, "50534101060300000040414243444546",
      "eb4b52370b657156d860fa91972c825525e6df6a41cbe212cf3c1f3bc6553c5e")),
    ("MaskedInputReply/u32", MaskedInputReply(3, SESSION, VECTOR),
     (62, "50534101060300000040414243444546",
      "9d70505a1cffc0cc25ec61a7bd4aa8ed8e9962255cb096ab6fd307dba4434afe")),
    ("MaskedInputReply/u64", MaskedInputReply(3, SESSION, VECTOR.astype(np.uint64) << 31),
     (78, "50534101060300000040414243444546",
      "541ccd6443b674fa51df623bb5c6a8cbcb143455872181405ce1b30c7e4b81fd")),
    ("UnmaskRequest", UnmaskRequest(SESSION, (1, 3), (2,)),
     (57, "5053410107404142434445464748494a",
      "20243e0428ae1ed026f27fae728362990a8939b9bae0bf583e4554845129f864")),
    ("UnmaskReply",
     UnmaskReply(1, SESSION, ((1, b"\xb1" * 32), (3, b"\xb3" * 32)), ((2, b"\x5a" * 32),)),
     (157, "50534101080100000040414243444546",
      "5ef35aef4bbc50d8091160a1edb8ad95e5701345e44bbf8ff84b229eeffad9ac")),
    ("UnmaskReply/empty", UnmaskReply(1, SESSION, (), ()),
     (49, "50534101080100000040414243444546",
      "ab74f24b99e966caadcdab6ff4697401d7e1df1979a4f290b805abd86824401a")),
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
        "505341" "01" "07"  # magic, version 1, type 7
        + SESSION.hex()
        + "02000000" "01000000" "03000000"  # alive: count 2, ids 1 and 3
        + "01000000" "02000000"  # dropped: count 1, id 2
    )  # fmt: skip
    assert UnmaskRequest(SESSION, (1, 3), (2,)).to_bytes().hex() == expected
    assert decode_message(bytes.fromhex(expected)) == UnmaskRequest(SESSION, (1, 3), (2,))
