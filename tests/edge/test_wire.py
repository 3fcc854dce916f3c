"""The fleet wire frame: round trips, and every malformed or hostile frame is refused."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.wire import MAGIC, OversizedFrame, WireError, decode, encode


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(st.text(max_size=10), st.integers() | st.text(max_size=20), max_size=5),
    st.binary(max_size=200),
)
def test_round_trip(header: dict, payload: bytes) -> None:
    frame = decode(encode(header, payload), 1 << 20)
    assert frame.header == header and frame.payload == payload


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "shorter"),
        (b"XXXX" + struct.pack("<I", 2) + b"{}", "bad magic"),
        (MAGIC + struct.pack("<I", 999) + b"{}", "runs past"),
        (MAGIC + struct.pack("<I", 2) + b"[]", "JSON object"),
        (MAGIC + struct.pack("<I", 3) + b"\xff{}", "not valid JSON"),
    ],
)
def test_malformed_frames_are_refused(data: bytes, fragment: str) -> None:
    with pytest.raises(WireError, match=fragment):
        decode(data, 1 << 20)


def test_oversized_frames_and_wrong_field_types() -> None:
    with pytest.raises(OversizedFrame):
        decode(encode({}, b"x" * 100), 50)
    frame = decode(encode({"round": True, "n": "3"}), 1 << 10)
    with pytest.raises(WireError, match="must be int"):
        frame.get("round", int)
    with pytest.raises(WireError, match="must be int"):
        frame.get("n", int)
    with pytest.raises(WireError, match="missing"):
        frame.get("task", str)
    assert frame.opt("task", str) is None
