"""Shamir sharing of 32-byte secrets on top of pycryptodome: exhaustive subsets for small n."""

from __future__ import annotations

import itertools

import pytest
from Crypto.Protocol import SecretSharing
from Crypto.Protocol.SecretSharing import Shamir

from edge.secagg import DeterministicRandom
from edge.secagg.errors import NotEnoughShares
from edge.secagg.shamir import combine_shares, split_secret

SECRET = bytes(range(100, 132))


@pytest.mark.parametrize(("n", "t"), [(3, 2), (4, 3), (5, 3), (6, 4)])
def test_every_subset_of_at_least_t_shares_reconstructs(n: int, t: int) -> None:
    shares = split_secret(SECRET, t, n, DeterministicRandom(b"shamir"))
    for size in range(t, n + 1):
        for subset in itertools.combinations(range(n), size):
            assert combine_shares({i + 1: shares[i] for i in subset}, t) == SECRET


@pytest.mark.parametrize(("n", "t"), [(4, 3), (5, 3), (6, 4)])
def test_every_subset_below_t_fails_and_does_not_reveal_the_secret(n: int, t: int) -> None:
    shares = split_secret(SECRET, t, n, DeterministicRandom(b"shamir"))
    for size in range(1, t):
        for subset in itertools.combinations(range(n), size):
            with pytest.raises(NotEnoughShares):
                combine_shares({i + 1: shares[i] for i in subset}, t)
            if size < 2:
                continue
            # Interpolating too few points gives a polynomial of too low degree: a wrong value.
            for block in range(2):
                points = [(i + 1, shares[i][16 * block : 16 * block + 16]) for i in subset]
                assert Shamir.combine(points) != SECRET[16 * block : 16 * block + 16]


def test_split_is_reproducible_from_the_injected_rng_and_restores_pycryptodome() -> None:
    before = SecretSharing.rng
    first = split_secret(SECRET, 3, 5, DeterministicRandom(b"r"))
    assert first == split_secret(SECRET, 3, 5, DeterministicRandom(b"r"))
    assert first != split_secret(SECRET, 3, 5, DeterministicRandom(b"q"))
    assert SecretSharing.rng is before


def test_a_tampered_share_changes_the_reconstruction() -> None:
    shares = split_secret(SECRET, 3, 5, DeterministicRandom(b"r"))
    bad = bytearray(shares[0])
    bad[0] ^= 0x80
    assert combine_shares({1: bytes(bad), 2: shares[1], 3: shares[2]}, 3) != SECRET


@pytest.mark.parametrize(("t", "n"), [(1, 3), (4, 3)])
def test_split_rejects_impossible_thresholds(t: int, n: int) -> None:
    with pytest.raises(ValueError):
        split_secret(SECRET, t, n, DeterministicRandom(b"r"))
