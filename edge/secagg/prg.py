"""The mask PRG: AES-256-CTR expanding a full 256-bit seed into a uniform vector mod 2^k.

Bonawitz et al. (CCS 2017) expand the self-mask seed ``b_u`` and every pairwise seed ``s_uv``
with a PRG. Public implementations have seeded a non-cryptographic generator with 32 bits; here
the whole 32-byte seed is the AES-256 key and the keystream (nonce 0, counter from 0) is read as
little-endian words of the storage width (8, 16, 32 or 64 bits). Keeping the low ``k`` bits of a
uniform ``w``-bit word is uniform mod ``2^k`` because ``2^k`` divides ``2^w``.
"""

from __future__ import annotations

import numpy as np
from Crypto.Cipher import AES

__all__ = ["SEED_SIZE", "expand", "storage_dtype"]

SEED_SIZE = 32


def storage_dtype(bit_width: int) -> np.dtype:
    """The smallest unsigned little-endian word holding ``bit_width`` bits."""
    if isinstance(bit_width, bool) or not isinstance(bit_width, int):
        raise TypeError(f"bit_width must be an int, got {type(bit_width).__name__}")
    for width in (8, 16, 32, 64):
        if bit_width <= width:
            if bit_width < 1:
                break
            return np.dtype(f"<u{width // 8}")
    raise ValueError(f"bit_width must be in 1..64, got {bit_width}")


def expand(seed: bytes, length: int, bit_width: int) -> np.ndarray:
    """Expand ``seed`` into ``length`` words uniform mod ``2^bit_width`` (native unsigned dtype).

    Deterministic per seed; every bit of the seed is key material.
    """
    if not isinstance(seed, bytes | bytearray) or len(seed) != SEED_SIZE:
        raise ValueError(f"PRG seed must be {SEED_SIZE} bytes")
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise ValueError(f"length must be a non-negative int, got {length!r}")
    dtype = storage_dtype(bit_width)
    cipher = AES.new(bytes(seed), AES.MODE_CTR, nonce=b"", initial_value=0)
    keystream = bytearray(length * dtype.itemsize)
    cipher.encrypt(keystream, output=keystream)
    words = np.frombuffer(keystream, dtype=dtype)
    native = words.astype(dtype.newbyteorder("="), copy=False)
    if bit_width != dtype.itemsize * 8:
        native = native & native.dtype.type((1 << bit_width) - 1)
    return native
