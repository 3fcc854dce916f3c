"""t-of-n Shamir sharing of 32-byte secrets with pycryptodome's ``Shamir`` (GF(2^128)).

Bonawitz et al. (CCS 2017) share each client's self-mask seed ``b_u`` and masking secret key
``s_u^SK`` with threshold ``t``. pycryptodome's :class:`Crypto.Protocol.SecretSharing.Shamir`
works on one 16-byte block, so a 32-byte secret is cut into two blocks, each shared with its own
random polynomial at the same indices; a holder's share is the concatenation of its two 16-byte
block shares.

pycryptodome draws the polynomial coefficients from a module-level ``rng``. To keep rounds
reproducible from an injected :data:`RandomSource`, :func:`split_secret` points that hook at the
caller's source for the duration of the call, under a lock. Shamir shares carry no integrity of
their own: callers verify the reconstructed secret (public-key rebuild for ``s_u^SK``, commitment
for ``b_u``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from Crypto.Protocol import SecretSharing
from Crypto.Protocol.SecretSharing import Shamir

from .errors import NotEnoughShares, ShareVerificationError
from .randomness import RandomSource

__all__ = ["BLOCK_SIZE", "SECRET_SIZE", "combine_shares", "split_secret"]

BLOCK_SIZE = 16
SECRET_SIZE = 32
_BLOCKS = SECRET_SIZE // BLOCK_SIZE
_RNG_LOCK = threading.Lock()

if not callable(getattr(SecretSharing, "rng", None)):  # pragma: no cover - depends on the wheel
    raise ImportError(
        "Crypto.Protocol.SecretSharing no longer exposes its module-level 'rng'; pin a "
        "pycryptodome release whose Shamir.split draws coefficients from it"
    )


def split_secret(secret: bytes, threshold: int, holders: int, rng: RandomSource) -> list[bytes]:
    """Share a 32-byte ``secret`` among ``holders`` so that any ``threshold`` of them recover it.

    Returns one 32-byte share per holder; share ``i`` (0-based) belongs to Shamir index ``i + 1``.
    """
    if not isinstance(secret, bytes | bytearray) or len(secret) != SECRET_SIZE:
        raise ValueError(f"secret must be {SECRET_SIZE} bytes")
    if not 2 <= threshold <= holders:
        raise ValueError(f"need 2 <= threshold <= holders, got {threshold} and {holders}")
    blocks: list[list[tuple[int, bytes]]] = []
    with _RNG_LOCK:
        saved = SecretSharing.rng
        SecretSharing.rng = rng
        try:
            for b in range(_BLOCKS):
                block = bytes(secret[b * BLOCK_SIZE : (b + 1) * BLOCK_SIZE])
                blocks.append(Shamir.split(threshold, holders, block))
        finally:
            SecretSharing.rng = saved
    shares = []
    for i in range(holders):
        parts = [blocks[b][i] for b in range(_BLOCKS)]
        assert all(index == i + 1 for index, _ in parts)
        shares.append(b"".join(value for _, value in parts))
    return shares


def combine_shares(shares: Mapping[int, bytes], threshold: int) -> bytes:
    """Rebuild a 32-byte secret from ``{shamir_index: share}`` with at least ``threshold`` shares.

    Uses the ``threshold`` lowest indices (pycryptodome's combine wants exactly ``threshold``).
    The result is only correct if those shares are; verify it against a commitment.
    """
    if threshold < 2:
        raise ValueError(f"threshold must be >= 2, got {threshold}")
    if len(shares) < threshold:
        raise NotEnoughShares(
            f"{len(shares)} shares given but {threshold} are needed; wait for more clients or "
            "abort the round"
        )
    chosen = sorted(shares)[:threshold]
    for index in chosen:
        if isinstance(index, bool) or not isinstance(index, int) or index < 1:
            raise ValueError(f"Shamir index must be a positive int, got {index!r}")
        if len(shares[index]) != SECRET_SIZE:
            raise ShareVerificationError(
                f"share at index {index} has {len(shares[index])} bytes, expected {SECRET_SIZE}"
            )
    out = []
    for b in range(_BLOCKS):
        part = [(i, bytes(shares[i][b * BLOCK_SIZE : (b + 1) * BLOCK_SIZE])) for i in chosen]
        out.append(Shamir.combine(part))
    return b"".join(out)
