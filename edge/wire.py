"""The fleet wire format: one frame per gRPC message, for both directions.

A frame is ``b"PFW1" | u32 little-endian header length | UTF-8 JSON header | payload bytes``.
The header carries small control fields; the payload carries bulk bytes (weights, a secure-
aggregation message, a .tflite). Decoding is strict: wrong magic, a truncated or oversized
frame, a header that is not a JSON object, or a field of the wrong type raises ``WireError``
naming what is wrong. Nothing here imports gRPC, so both sides and the tests share it.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any, TypeVar

MAGIC = b"PFW1"
MAX_HEADER = 64 * 1024
_PREFIX = struct.Struct("<4sI")

# Task kinds the coordinator hands a device, and what the device sends back for each.
TASK_KINDS = ("idle", "train", "secagg", "evaluate", "deploy", "stop")

T = TypeVar("T")


class WireError(ValueError):
    """A frame or one of its fields is malformed."""


class OversizedFrame(WireError):
    """A frame is larger than the negotiated limit."""


@dataclass(frozen=True)
class Frame:
    """A decoded message: control header and opaque payload."""

    header: dict[str, Any]
    payload: bytes = field(default=b"", repr=False)

    def get(self, key: str, kind: type[T]) -> T:
        """A required header field of an exact type (bool is not accepted as int)."""
        if key not in self.header:
            raise WireError(f"header field {key!r} is missing")
        value = self.header[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise WireError(
                f"header field {key!r} must be {kind.__name__}, got {type(value).__name__}"
            )
        return value

    def opt(self, key: str, kind: type[T]) -> T | None:
        """An optional header field (None when absent or null)."""
        if self.header.get(key) is None:
            return None
        return self.get(key, kind)


def encode(header: dict[str, Any], payload: bytes = b"") -> bytes:
    """Serialise a frame (header keys sorted, so equal messages have equal bytes)."""
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    if len(head) > MAX_HEADER:
        raise OversizedFrame(f"header of {len(head)} bytes exceeds {MAX_HEADER}")
    return _PREFIX.pack(MAGIC, len(head)) + head + payload


def decode(data: bytes, max_bytes: int) -> Frame:
    """Parse and validate a frame of at most ``max_bytes``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WireError(f"frame must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_bytes:
        raise OversizedFrame(f"frame of {len(data)} bytes exceeds the limit of {max_bytes}")
    if len(data) < _PREFIX.size:
        raise WireError(
            f"frame of {len(data)} bytes is shorter than its {_PREFIX.size}-byte prefix"
        )
    magic, head_len = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise WireError(f"bad magic {magic!r}: not a pifed frame (or another protocol version)")
    if head_len > MAX_HEADER or _PREFIX.size + head_len > len(data):
        raise WireError(f"header length {head_len} runs past the frame ({len(data)} bytes)")
    try:
        header = json.loads(data[_PREFIX.size : _PREFIX.size + head_len])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WireError(f"header is not valid JSON: {e}") from e
    if not isinstance(header, dict):
        raise WireError("header must be a JSON object")
    return Frame(header, data[_PREFIX.size + head_len :])
