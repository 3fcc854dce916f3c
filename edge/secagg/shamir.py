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

The server rebuilds one secret per client (``b_u`` of every survivor, ``s_u^SK`` of every dropped
client), always from the same ``t`` responders. ``Shamir.combine`` recomputes the Lagrange basis
(``t`` field inversions and ``t^2`` products) for every block; :class:`ShareCombiner` computes
the basis once per responder set with pycryptodome's own GF(2^128) element and then needs ``t``
products per block (at n = 100, t = 67: 200 blocks in ~2.6 s instead of ~23 s). Its results are
checked against ``Shamir.combine`` at import and in the tests, and the caller's commitment and
public-key checks still verify every rebuilt secret.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

from Crypto.Protocol import SecretSharing
from Crypto.Protocol.SecretSharing import Shamir

from .errors import NotEnoughShares, ShareVerificationError
from .randomness import DeterministicRandom, RandomSource

__all__ = ["BLOCK_SIZE", "SECRET_SIZE", "ShareCombiner", "combine_shares", "split_secret"]

BLOCK_SIZE = 16
SECRET_SIZE = 32
_BLOCKS = SECRET_SIZE // BLOCK_SIZE
_RNG_LOCK = threading.Lock()

if not callable(getattr(SecretSharing, "rng", None)):  # pragma: no cover - depends on the wheel
    raise ImportError(
        "Crypto.Protocol.SecretSharing no longer exposes its module-level 'rng'; pin a "
        "pycryptodome release whose Shamir.split draws coefficients from it"
    )


try:
    from Crypto.Protocol.SecretSharing import _Element
except ImportError as exc:  # pragma: no cover - depends on the wheel
    raise ImportError(
        "Crypto.Protocol.SecretSharing no longer exposes its GF(2^128) element '_Element'; pin a "
        "pycryptodome release that has it (see BUILD_NOTES.md)"
    ) from exc


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

    __slots__ = ("_basis", "_indices")

    def __init__(self, indices: Sequence[int]) -> None:
        chosen = tuple(_checked_index(i) for i in indices)
        if len(chosen) < 2:
            raise ValueError(f"need at least 2 share indices, got {len(chosen)}")
        if len(set(chosen)) != len(chosen):
            raise ValueError(f"Shamir indices must be distinct, got {sorted(chosen)}")
        xs = [_Element(i) for i in chosen]
        basis = []
        # Lagrange basis at 0 in characteristic 2: l_j(0) = prod_{m != j} x_m / (x_j + x_m).
        for j, x_j in enumerate(xs):
            numerator, denominator = _Element(1), _Element(1)
            for m, x_m in enumerate(xs):
                if m != j:
                    numerator *= x_m
                    denominator *= x_j + x_m
            basis.append(numerator * denominator.inverse())
        self._indices = chosen
        self._basis = tuple(basis)

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
            acc = _Element(0)
            for weight, value in zip(self._basis, values, strict=True):
                acc += weight * _Element(value[b * BLOCK_SIZE : (b + 1) * BLOCK_SIZE])
            out.append(acc.encode())
        return b"".join(out)


def _self_test() -> None:
    """Known answer against ``Shamir.combine``, so a changed pycryptodome fails loudly here."""
    secret = bytes(range(SECRET_SIZE))
    shares = split_secret(secret, 3, 5, DeterministicRandom(b"pifed-secagg/v1 shamir self-test"))
    chosen = {i: shares[i - 1] for i in (2, 3, 5)}
    batched = ShareCombiner(sorted(chosen)).combine(chosen)
    if combine_shares(chosen, 3) != secret or batched != secret:
        raise ImportError(  # pragma: no cover - depends on the wheel
            "pycryptodome's GF(2^128) element no longer matches Shamir.combine; pin a "
            "pycryptodome release whose SecretSharing._Element does (see BUILD_NOTES.md)"
        )


_self_test()
