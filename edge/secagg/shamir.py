"""t-of-n Shamir sharing of 32-byte secrets over GF(2^128), as pycryptodome's ``Shamir``.

Bonawitz et al. (CCS 2017) share each client's self-mask seed ``b_u`` and masking secret key
``s_u^SK`` with threshold ``t``. pycryptodome's :class:`Crypto.Protocol.SecretSharing.Shamir`
works on one 16-byte block, so a 32-byte secret is cut into two blocks, each shared with its own
random polynomial at the same indices; a holder's share is the concatenation of its two 16-byte
block shares.

Speed. ``Shamir.split`` and ``Shamir.combine`` multiply in GF(2^128) in pure Python (about 10 µs
a product). At n = 100, t = 67 a client's 4 blocks cost ~27,000 products (0.25 s) and the server's
reconstruction ~23 s. GCM's GHASH is Horner's rule in the same field (x^128 + x^7 + x^2 + x + 1),
and pycryptodome implements it in C (``Crypto.Cipher._mode_gcm``, CLMUL/PMULL or portable): with
the evaluation point as the hash key and the coefficients as the data,
``GHASH_x(c_{t-1}, ..., c_1) + c_0`` is the share at ``x``. GHASH reads bits in reflected order,
so elements are bit-reversed at that boundary. :func:`split_secret` draws its coefficients from
the injected rng in the order ``Shamir.split`` draws them from its own, and its shares are
byte-identical to ``Shamir.split``'s for the same random bytes; :class:`ShareCombiner` equals
``Shamir.combine``. Both facts are checked at import (a known answer that raises ImportError
naming the fix if pycryptodome changes) and in the tests. Shamir shares carry no integrity of
their own: callers verify every reconstructed secret (public-key rebuild for ``s_u^SK``,
commitment for ``b_u``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from Crypto.Cipher import _mode_gcm
from Crypto.Protocol import SecretSharing
from Crypto.Protocol.SecretSharing import Shamir, _Element

from .errors import NotEnoughShares, ShareVerificationError
from .randomness import DeterministicRandom, RandomSource

__all__ = [
    "BLOCK_SIZE",
    "SECRET_SIZE",
    "ShareCombiner",
    "combine_shares",
    "reference_split",
    "split_secret",
]

BLOCK_SIZE = 16
SECRET_SIZE = 32
_BLOCKS = SECRET_SIZE // BLOCK_SIZE
#: Byte -> the same byte with its 8 bits in reverse order (GHASH's bit-reflected encoding).
_REFLECT = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


class _GhashField:
    """GF(2^128) products and polynomial evaluation through one of pycryptodome's C GHASH cores.

    Elements are ints in ``SecretSharing._Element``'s encoding (bit i is the coefficient of x^i).
    """

    __slots__ = ("_core",)

    def __init__(self, core: Any) -> None:
        if core is None or not hasattr(_mode_gcm, "_GHASH"):
            raise ImportError(
                "pycryptodome's GHASH core (Crypto.Cipher._mode_gcm._GHASH) is missing; pin a "
                "pycryptodome release that has it (see BUILD_NOTES.md)"
            )
        self._core = core

    @staticmethod
    def reflect(block: bytes) -> bytes:
        """Big-endian 16-byte element <-> GHASH's bit-reflected block (an involution)."""
        return block[::-1].translate(_REFLECT)

    def horner(self, x: int, reflected_coeffs: bytes) -> int:
        """``c_1 x^m + ... + c_m x`` for the m reflected 16-byte coefficients, highest first."""
        key = self.reflect(x.to_bytes(BLOCK_SIZE, "big"))
        digest = _mode_gcm._GHASH(key, self._core).update(reflected_coeffs).digest()
        return int.from_bytes(self.reflect(bytes(digest)), "big")

    def mul(self, a: int, b: int) -> int:
        """The product ``a * b``."""
        if a == 0 or b == 0:
            return 0
        return self.horner(a, self.reflect(b.to_bytes(BLOCK_SIZE, "big")))


_FIELD = _GhashField(
    getattr(_mode_gcm, "_ghash_clmul", None) or getattr(_mode_gcm, "_ghash_portable", None)
)


def _checked_index(index: object) -> int:
    if isinstance(index, bool) or not isinstance(index, int) or not 1 <= index < 2**128:
        raise ValueError(f"Shamir index must be an int in 1..2^128-1, got {index!r}")
    return index


def _checked_share(index: int, share: bytes) -> bytes:
    if not isinstance(share, bytes | bytearray) or len(share) != SECRET_SIZE:
        size = len(share) if isinstance(share, bytes | bytearray) else type(share).__name__
        raise ShareVerificationError(
            f"share at index {index} has {size} bytes, expected {SECRET_SIZE}"
        )
    return bytes(share)


def split_secret(
    secret: bytes, threshold: int, holders: int, rng: RandomSource, *, field: _GhashField = _FIELD
) -> list[bytes]:
    """Share a 32-byte ``secret`` among ``holders`` so that any ``threshold`` of them recover it.

    Returns one 32-byte share per holder; share ``i`` (0-based) belongs to Shamir index ``i + 1``.
    The ``threshold - 1`` random coefficients per block come from ``rng``, which makes a round
    reproducible from a seed.
    """
    if not isinstance(secret, bytes | bytearray) or len(secret) != SECRET_SIZE:
        raise ValueError(f"secret must be {SECRET_SIZE} bytes")
    if not 2 <= threshold <= holders:
        raise ValueError(f"need 2 <= threshold <= holders, got {threshold} and {holders}")
    values: list[list[int]] = []
    for b in range(_BLOCKS):
        constant = int.from_bytes(secret[b * BLOCK_SIZE : (b + 1) * BLOCK_SIZE], "big")
        # Shamir.split draws c_{t-1} first (the Horner order); so do we, one block at a time.
        coeffs = b"".join(field.reflect(rng(BLOCK_SIZE)) for _ in range(threshold - 1))
        values.append([field.horner(x, coeffs) ^ constant for x in range(1, holders + 1)])
    return [
        b"".join(values[b][i].to_bytes(BLOCK_SIZE, "big") for b in range(_BLOCKS))
        for i in range(holders)
    ]


def combine_shares(shares: Mapping[int, bytes], threshold: int) -> bytes:
    """Rebuild a 32-byte secret from ``{shamir_index: share}`` with at least ``threshold`` shares.

    The reference path (pycryptodome's own ``Shamir.combine``, on the ``threshold`` lowest
    indices); the server uses :class:`ShareCombiner`. The result is only correct if the shares
    are; verify it against a commitment.
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
        _checked_share(_checked_index(index), shares[index])
    out = []
    for b in range(_BLOCKS):
        part = [(i, bytes(shares[i][b * BLOCK_SIZE : (b + 1) * BLOCK_SIZE])) for i in chosen]
        out.append(Shamir.combine(part))
    return b"".join(out)


class ShareCombiner:
    """Rebuilds many secrets shared at the same ``t`` indices, with one Lagrange basis.

    Build it once per responder set, then call :meth:`combine` per secret. The result equals
    ``Shamir.combine`` on the same shares (checked at import); it is only correct if the shares
    are, so verify it against a commitment as with :func:`combine_shares`.
    """

    __slots__ = ("_field", "_indices", "_keys")

    def __init__(self, indices: Sequence[int], *, field: _GhashField = _FIELD) -> None:
        chosen = tuple(_checked_index(i) for i in indices)
        if len(chosen) < 2:
            raise ValueError(f"need at least 2 share indices, got {len(chosen)}")
        if len(set(chosen)) != len(chosen):
            raise ValueError(f"Shamir indices must be distinct, got {sorted(chosen)}")
        keys = []
        # Lagrange basis at 0 in characteristic 2: l_j(0) = prod_{m != j} x_m / (x_j + x_m).
        for j, x_j in enumerate(chosen):
            numerator, denominator = 1, 1
            for m, x_m in enumerate(chosen):
                if m != j:
                    numerator = field.mul(numerator, x_m)
                    denominator = field.mul(denominator, x_j ^ x_m)
            weight = field.mul(numerator, int(_Element(denominator).inverse()))
            keys.append(weight)
        self._field = field
        self._indices = chosen
        self._keys = tuple(keys)

    @property
    def indices(self) -> tuple[int, ...]:
        """The Shamir indices whose shares :meth:`combine` takes."""
        return self._indices

    def combine(self, shares: Mapping[int, bytes]) -> bytes:
        """Rebuild one 32-byte secret from its shares at exactly :attr:`indices`."""
        if set(shares) != set(self._indices):
            raise NotEnoughShares(
                f"shares given at indices {sorted(shares)} but this combiner was built for "
                f"{sorted(self._indices)}; build one per responder set"
            )
        values = [_checked_share(i, shares[i]) for i in self._indices]
        out = []
        for b in range(_BLOCKS):
            acc = 0
            for weight, value in zip(self._keys, values, strict=True):
                block = int.from_bytes(value[b * BLOCK_SIZE : (b + 1) * BLOCK_SIZE], "big")
                acc ^= self._field.mul(weight, block)
            out.append(acc.to_bytes(BLOCK_SIZE, "big"))
        return b"".join(out)


_RNG_LOCK = threading.Lock()


def reference_split(secret: bytes, threshold: int, holders: int, rng: RandomSource) -> list[bytes]:
    """The same sharing through pycryptodome's own ``Shamir.split`` (slow; for checking only).

    ``Shamir.split`` draws its coefficients from the module-level ``SecretSharing.rng``; it is
    pointed at ``rng`` for the call, under a lock, and restored.
    """
    if not callable(getattr(SecretSharing, "rng", None)):  # pragma: no cover - wheel-dependent
        raise ImportError(
            "Crypto.Protocol.SecretSharing no longer exposes its module-level 'rng'; pin a "
            "pycryptodome release whose Shamir.split draws coefficients from it"
        )
    blocks = []
    with _RNG_LOCK:
        saved = SecretSharing.rng
        SecretSharing.rng = rng
        try:
            for b in range(_BLOCKS):
                block = bytes(secret[b * BLOCK_SIZE : (b + 1) * BLOCK_SIZE])
                blocks.append(Shamir.split(threshold, holders, block))
        finally:
            SecretSharing.rng = saved
    return [b"".join(blocks[b][i][1] for b in range(_BLOCKS)) for i in range(holders)]


def _self_test() -> None:
    """Known answers against ``Shamir.split``/``combine``, so a changed pycryptodome fails here."""
    secret = bytes(range(SECRET_SIZE))
    seed = b"pifed-secagg/v1 shamir self-test"
    shares = split_secret(secret, 3, 5, DeterministicRandom(seed))
    chosen = {i: shares[i - 1] for i in (2, 3, 5)}
    if (
        shares != reference_split(secret, 3, 5, DeterministicRandom(seed))
        or combine_shares(chosen, 3) != secret
        or ShareCombiner(sorted(chosen)).combine(chosen) != secret
    ):
        raise ImportError(  # pragma: no cover - depends on the wheel
            "pycryptodome's GHASH no longer matches its Shamir.split/combine; pin a "
            "pycryptodome release where it does (see BUILD_NOTES.md)"
        )


_self_test()
