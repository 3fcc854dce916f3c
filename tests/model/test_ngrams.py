"""The hashed n-gram features (model.ngrams): what counts, how it hashes, how it weighs."""

from __future__ import annotations

import numpy as np
import pytest

from model.ngrams import HASH_PRIME, check_buckets, ngram_features, ngram_windows

END = 9


def test_a_three_letter_name_counts_the_ngrams_of_its_marked_form() -> None:
    """ "^abc$" (left PAD as ^, the end marker as $): a b c $, ^a ab bc c$, ^ab abc bc$,
    ^abc abc$, ^abc$ -- 4 + 4 + 3 + 2 + 1 = 14, each weighted 1 / sqrt(14)."""
    x = np.array([[0, 0, 0, 2, 3, 4]], np.int32)
    buckets, weights = ngram_features(x, 1000, 5, END)
    assert buckets.shape == weights.shape == (1, ngram_windows(6, 5))
    counted = weights[0] > 0
    assert counted.sum() == 14
    np.testing.assert_allclose(weights[0][counted], 1 / np.sqrt(14), rtol=1e-6)
    # The trigram "abc" (ids shifted by one: 3, 4, 5) hashes by the documented rolling rule.
    abc = ((3 * HASH_PRIME + 4) % 1000 * HASH_PRIME + 5) % 1000
    first_trigram = ngram_windows(6, 2)
    assert buckets[0, first_trigram + 3] == abc and counted[first_trigram + 3]


def test_padding_and_position_do_not_change_a_names_ngrams() -> None:
    short = np.array([[0, 0, 0, 0, 5, 6, 7]], np.int32)
    shifted = np.array([[0, 0, 5, 6, 7]], np.int32)
    a, wa = ngram_features(short, 4096, 5, END)
    b, wb = ngram_features(shifted, 4096, 5, END)
    assert sorted(a[0][wa[0] > 0].tolist()) == sorted(b[0][wb[0] > 0].tolist())


def test_buckets_stay_in_range_and_an_empty_name_has_no_weight() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 400, (64, 16)).astype(np.int32)
    x[0] = 0
    buckets, weights = ngram_features(x, 777, 5, 400)
    assert buckets.dtype == np.int32 and weights.dtype == np.float32
    assert buckets.min() >= 0 and buckets.max() < 777
    # Only the end marker counts for an empty name: "$" and "^$".
    assert (weights[0] > 0).sum() == 2


@pytest.mark.parametrize("bad", [0, -3, 2**21])
def test_bucket_counts_that_would_break_the_int32_hash_are_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="ngram buckets"):
        check_buckets(bad)
