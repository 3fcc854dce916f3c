"""Double masking: pairwise masks cancel for any survivor set of size >= t (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.secagg import DeterministicRandom, default_threshold
from edge.secagg.keys import X25519KeyPair
from edge.secagg.masking import add_prg, masked_input, reduce_mod, unmask_dropped
from edge.secagg.prg import storage_dtype

SESSION = bytes(range(32))


@st.composite
def rounds(draw: st.DrawFn) -> tuple[int, list[int], int, int]:
    n = draw(st.integers(2, 7))
    t = default_threshold(n)
    survivors = draw(st.lists(st.integers(1, n), min_size=t, max_size=n, unique=True))
    bit_width = draw(st.sampled_from([16, 24, 32, 64]))
    seed = draw(st.integers(0, 2**16))
    return n, sorted(survivors), bit_width, seed


@settings(max_examples=25, deadline=None)
@given(rounds())
def test_masks_cancel_for_any_survivor_set_of_at_least_t(
    case: tuple[int, list[int], int, int],
) -> None:
    n, survivors, bit_width, seed = case
    rng = DeterministicRandom(b"mask-%d" % seed)
    ids = list(range(1, n + 1))
    s_keys = {cid: X25519KeyPair.generate(rng) for cid in ids}
    self_seeds = {cid: rng(32) for cid in ids}
    m = 17
    dtype = storage_dtype(bit_width).newbyteorder("=")
    limit = np.uint64((1 << bit_width) - 1)
    words = {
        cid: (np.frombuffer(rng(8 * m), dtype="<u8").astype(np.uint64) & limit).astype(dtype)
        for cid in ids
    }
    publics = {cid: key.public for cid, key in s_keys.items()}
    acc = np.zeros(m, dtype=dtype)
    for cid in survivors:
        peers = {p: publics[p] for p in ids if p != cid}  # all n shared keys (U2)
        y = masked_input(words[cid], cid, s_keys[cid], self_seeds[cid], peers, SESSION, bit_width)
        assert not np.array_equal(y, words[cid])
        np.add(acc, y, out=acc)
    # The server removes the survivors' self masks and the dropped clients' pairwise masks.
    for cid in survivors:
        add_prg(acc, self_seeds[cid], bit_width, -1)
    alive = {cid: publics[cid] for cid in survivors}
    for cid in sorted(set(ids) - set(survivors)):
        unmask_dropped(acc, cid, s_keys[cid], alive, SESSION, bit_width)
    expected = np.zeros(m, dtype=np.uint64)
    for cid in survivors:
        expected = expected + words[cid].astype(np.uint64)
    expected = expected & limit
    assert np.array_equal(reduce_mod(acc, bit_width).astype(np.uint64), expected)


def test_forgetting_one_dropped_client_leaves_the_sum_masked() -> None:
    rng = DeterministicRandom(b"forget")
    ids = [1, 2, 3, 4]
    keys = {cid: X25519KeyPair.generate(rng) for cid in ids}
    seeds = {cid: rng(32) for cid in ids}
    zero = np.zeros(64, dtype=np.uint32)
    publics = {cid: key.public for cid, key in keys.items()}
    acc = np.zeros(64, dtype=np.uint32)
    for cid in (1, 2, 3):
        peers = {p: publics[p] for p in ids if p != cid}
        acc += masked_input(zero, cid, keys[cid], seeds[cid], peers, SESSION, 32)
        add_prg(acc, seeds[cid], 32, -1)
    assert np.count_nonzero(acc) > 60  # client 4's pairwise masks are still in there
    unmask_dropped(acc, 4, keys[4], {c: publics[c] for c in (1, 2, 3)}, SESSION, 32)
    assert not np.any(acc)
