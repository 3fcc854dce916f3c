"""Injected randomness and clocks for the secure-aggregation state machines.

Every random byte the protocol of Bonawitz et al. (CCS 2017) needs -- key pairs, self-mask seeds,
Shamir coefficients, AEAD nonces, stochastic rounding, round nonces -- is drawn from a
:data:`RandomSource` passed in by the caller, and every deadline is read from a :data:`Clock`.
Production code uses :func:`system_random` (``Crypto.Random``, i.e. the OS CSPRNG) and
``time.monotonic``; tests and benchmarks use :class:`DeterministicRandom` so that a whole round,
down to the bytes on the wire, is reproducible from a seed, and :class:`ManualClock` so that a
deadline passes exactly when the driver says (``federated.secagg_local`` drives such rounds).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from Crypto.Cipher import AES
from Crypto.Hash import SHA256
from Crypto.Random import get_random_bytes

__all__ = ["Clock", "DeterministicRandom", "ManualClock", "RandomSource", "system_random"]

#: ``rng(n)`` returns ``n`` random bytes.
RandomSource = Callable[[int], bytes]
#: ``clock()`` returns seconds from an arbitrary, monotonic origin.
Clock = Callable[[], float]

_DOMAIN = b"pifed-secagg/v1 deterministic-random"


def system_random(n: int) -> bytes:
    """Return ``n`` bytes from the operating system's CSPRNG (the production default)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"byte count must be a non-negative int, got {n!r}")
    return get_random_bytes(n)


class DeterministicRandom:
    """A seeded DRBG: the AES-256-CTR keystream under ``SHA-256(domain || seed)``.

    Use it for reproducible tests and benchmarks only. The same seed always yields the same byte
    stream on every platform, so a round run twice with the same seeds produces identical
    messages. Successive calls continue the stream; they never repeat bytes.
    """

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes | bytearray):
            raise TypeError(f"seed must be bytes, got {type(seed).__name__}")
        if len(seed) == 0:
            raise ValueError("seed must not be empty; pass e.g. b'test-seed-1'")
        key = SHA256.new(_DOMAIN + bytes(seed)).digest()
        self._cipher = AES.new(key, AES.MODE_CTR, nonce=b"", initial_value=0)

    def __call__(self, n: int) -> bytes:
        """Return the next ``n`` bytes of the stream."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"byte count must be a non-negative int, got {n!r}")
        return self._cipher.encrypt(bytes(n))


@dataclass
class ManualClock:
    """A :data:`Clock` that stands still until its owner sets ``now``: for tests and benchmarks.

    It lives here, beside :class:`DeterministicRandom`, because the client state machine takes
    it too: the edge tests use it without importing anything from ``federated``.
    """

    now: float = 0.0

    def __call__(self) -> float:
        """The time the owner last set."""
        return self.now
