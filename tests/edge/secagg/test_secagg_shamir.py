"""Shamir sharing of 32-byte secrets on pycryptodome's GF(2^128): exhaustive subsets for small n,
and the split and batched combiner, checked against pycryptodome's own Shamir.split/combine."""

from __future__ import annotations

import itertools
import os

import pytest
from Crypto.Cipher import _mode_gcm
from Crypto.Protocol import SecretSharing
from Crypto.Protocol.SecretSharing import Shamir, _Element
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.secagg import DeterministicRandom
from edge.secagg.errors import NotEnoughShares, ShareVerificationError
from edge.secagg.shamir import (
    _FIELD,
    ShareCombiner,
    _GhashField,
    combine_shares,
    reference_split,
    split_secret,
)

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


def test_split_is_reproducible_from_the_injected_rng() -> None:
    first = split_secret(SECRET, 3, 5, DeterministicRandom(b"r"))
    assert first == split_secret(SECRET, 3, 5, DeterministicRandom(b"r"))
    assert first != split_secret(SECRET, 3, 5, DeterministicRandom(b"q"))


@settings(max_examples=30, deadline=None)
@given(secret=st.binary(min_size=32, max_size=32), n=st.integers(2, 40), data=st.data())
def test_split_is_byte_identical_to_pycryptodome_shamir_split(
    secret: bytes, n: int, data: st.DataObject
) -> None:
    """The GHASH-based split is pycryptodome's polynomial, evaluated in C, on the same draws."""
    t = data.draw(st.integers(2, n))
    seed = data.draw(st.binary(min_size=1, max_size=8))
    before = SecretSharing.rng
    assert split_secret(secret, t, n, DeterministicRandom(seed)) == reference_split(
        secret, t, n, DeterministicRandom(seed)
    )
    assert SecretSharing.rng is before


@pytest.mark.skipif(_mode_gcm._ghash_clmul is None, reason="this CPU only has the portable core")
def test_the_portable_ghash_core_gives_the_same_shares_as_clmul() -> None:
    """A Pi without PMULL uses the portable core: it must agree with the accelerated one."""
    portable = _GhashField(_mode_gcm._ghash_portable)
    fast = split_secret(SECRET, 4, 9, DeterministicRandom(b"core"))
    assert split_secret(SECRET, 4, 9, DeterministicRandom(b"core"), field=portable) == fast
    chosen = {i: fast[i - 1] for i in (2, 5, 7, 9)}
    assert ShareCombiner(sorted(chosen), field=portable).combine(chosen) == SECRET


@settings(max_examples=200, deadline=None)
@given(a=st.integers(0, 2**128 - 1), b=st.integers(0, 2**128 - 1))
def test_field_products_match_pycryptodome_element(a: int, b: int) -> None:
    assert _FIELD.mul(a, b) == int(_Element(a) * _Element(b))


def test_a_tampered_share_changes_the_reconstruction() -> None:
    shares = split_secret(SECRET, 3, 5, DeterministicRandom(b"r"))
    bad = bytearray(shares[0])
    bad[0] ^= 0x80
    assert combine_shares({1: bytes(bad), 2: shares[1], 3: shares[2]}, 3) != SECRET


@pytest.mark.parametrize(("t", "n"), [(1, 3), (4, 3)])
def test_split_rejects_impossible_thresholds(t: int, n: int) -> None:
    with pytest.raises(ValueError):
        split_secret(SECRET, t, n, DeterministicRandom(b"r"))


@pytest.mark.parametrize(("n", "t"), [(3, 2), (5, 3), (6, 4)])
def test_the_batched_combiner_agrees_with_pycryptodome_on_every_subset(n: int, t: int) -> None:
    shares = split_secret(SECRET, t, n, DeterministicRandom(b"batch"))
    for subset in itertools.combinations(range(1, n + 1), t):
        combiner = ShareCombiner(subset)
        assert combiner.combine({i: shares[i - 1] for i in subset}) == SECRET
        # Shares that do not lie on one polynomial: both paths give the same wrong value.
        noise = {i: os.urandom(32) for i in subset}
        assert combiner.combine(noise) == combine_shares(noise, t)


@settings(max_examples=25, deadline=None)
@given(
    secrets=st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=4),
    n=st.integers(2, 12),
    data=st.data(),
)
def test_one_combiner_rebuilds_many_secrets_like_shamir_combine(
    secrets: list[bytes], n: int, data: st.DataObject
) -> None:
    t = data.draw(st.integers(2, n))
    indices = sorted(data.draw(st.sets(st.integers(1, n), min_size=t, max_size=t)))
    combiner = ShareCombiner(indices)
    for k, secret in enumerate(secrets):
        shares = split_secret(secret, t, n, DeterministicRandom(b"h%d" % k))
        chosen = {i: shares[i - 1] for i in indices}
        assert combiner.combine(chosen) == secret == combine_shares(chosen, t)


def test_the_combiner_names_a_wrong_index_set_or_share() -> None:
    shares = split_secret(SECRET, 3, 5, DeterministicRandom(b"r"))
    combiner = ShareCombiner([1, 2, 3])
    with pytest.raises(NotEnoughShares, match=r"built for \[1, 2, 3\]"):
        combiner.combine({1: shares[0], 2: shares[1], 4: shares[3]})
    with pytest.raises(ShareVerificationError, match="index 2 has 31 bytes"):
        combiner.combine({1: shares[0], 2: shares[1][:31], 3: shares[2]})
    for bad in ([1, 1, 2], [1], [0, 1, 2], [True, 2, 3]):
        with pytest.raises(ValueError):
            ShareCombiner(bad)
