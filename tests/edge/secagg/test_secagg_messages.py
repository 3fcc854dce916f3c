"""Wire format: deterministic little-endian bytes, strict parsing."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from edge.secagg.errors import MalformedMessage
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

H = bytes(range(32))
K = bytes(range(32, 64))
SHARE = EncryptedShare(7, b"n" * 12, b"c" * 88)

SAMPLES: list[Message] = [
    AdvertiseKeysRequest(H, K),
    AdvertiseKeysReply(3, H, K, H),
    ShareKeysRequest(H, K, ((1, H, K), (2, K, H))),
    ShareKeysReply(1, H, K, (SHARE, EncryptedShare(9, b"m" * 12, b""))),
    MaskedInputRequest(2, H, (SHARE,)),
    UnmaskRequest(H, (1, 2, 5), (3,)),
    UnmaskReply(1, H, ((1, K), (2, H)), ((3, K),)),
    UnmaskReply(1, H, (), ()),
]


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips_through_bytes(message: Message) -> None:
    data = message.to_bytes()
    assert decode_message(data) == message
    assert decode_message(data).to_bytes() == data


@pytest.mark.parametrize("dtype", ["<u4", ">u4", "<u8", "<u2", "<u1"])
def test_masked_vectors_encode_little_endian_whatever_the_host_order(dtype: str) -> None:
    vec = np.array([1, 2, 250], dtype=dtype)
    data = MaskedInputReply(4, H, vec).to_bytes()
    size = np.dtype(dtype).itemsize
    assert data[-3 * size :] == b"".join(int(v).to_bytes(size, "little") for v in (1, 2, 250))
    back = decode_message(data)
    assert isinstance(back, MaskedInputReply)
    assert back.vector.dtype.itemsize == size and back.vector.tolist() == [1, 2, 250]


def test_known_layout_of_an_advertisement() -> None:
    data = AdvertiseKeysReply(0x01020304, H, K, H).to_bytes()
    assert data[:5] == b"PSA\x02\x02"  # protocol version 2
    assert data[5:9] == struct.pack("<I", 0x01020304) == b"\x04\x03\x02\x01"
    assert data[9:] == H + K + H + bytes(4) + bytes(4)  # no certificate, no signature


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_truncated_or_extended_bytes_are_malformed(message: Message) -> None:
    data = message.to_bytes()
    with pytest.raises(MalformedMessage):
        decode_message(data[:-1])
    with pytest.raises(MalformedMessage):
        decode_message(data + b"\x00")


@pytest.mark.parametrize(
    "data",
    [b"", b"XYZ\x02\x01", b"PSA\x01\x01" + H + K, b"PSA\x02\x63" + H + K, b"PSA\x02"],
    ids=["empty", "magic", "version", "type", "short-header"],
)
def test_foreign_bytes_are_malformed(data: bytes) -> None:
    with pytest.raises(MalformedMessage):
        decode_message(data)


def test_a_huge_claimed_list_length_is_rejected_before_allocating() -> None:
    data = b"PSA\x02\x07" + H + struct.pack("<I", 2**31) + b"\x00" * 8
    with pytest.raises(MalformedMessage):
        decode_message(data)


def test_masked_vector_with_unsupported_word_width_is_malformed() -> None:
    data = bytearray(MaskedInputReply(4, H, np.array([1], dtype="<u4")).to_bytes())
    data[5 + 4 + 32] = 24
    with pytest.raises(MalformedMessage):
        decode_message(bytes(data))


def test_fields_of_the_wrong_size_are_rejected_on_construction() -> None:
    with pytest.raises(MalformedMessage):
        AdvertiseKeysReply(1, H, K[:31], H)
    with pytest.raises(MalformedMessage):
        UnmaskRequest(H, (2**32,), ())
