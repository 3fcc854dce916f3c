"""Hashed character n-grams of encoded names, in numpy (TF-free): the model's second reader.

Why: a linear model over character 1-5-grams beat the GRU alone on this data (issue 21), and the
two together beat both. The n-grams are not a second model input: ``model.ngram_bag`` computes
the same buckets inside the graph from the char ids with integer builtins, so every artifact, the
``train`` signature and every caller keep one int32 [batch, max_len] input. This module is the
reference both sides follow (the numpy trainer uses it; tests check the graph against it).

The scheme, on ids ``x`` [batch, max_len] (left-padded with PAD_ID 0):

- an end marker (id ``end_id``, the vocabulary size, so no character has it) is appended, and
  every id is shifted by one, so the padding hashes as 1 (the left PAD is the start marker);
- the n-gram of length n starting at position t hashes by ``h = (h * HASH_PRIME + c) % buckets``
  over its characters, from h = 0;
- an n-gram counts if it has at most one leading PAD (unigrams: none), i.e. lies inside
  "^name$" (the unigram "$" counts too: the same in every name, a bias); its weight is
  1 / sqrt(number of counted n-grams in that name), so a long name does not outvote the GRU
  by length alone.
"""

from __future__ import annotations

import numpy as np

HASH_PRIME = 1009
#: The int32 the graph computes stays below ``buckets * HASH_PRIME + end_id + 1``.
MAX_BUCKETS = 1 << 20


def check_buckets(buckets: int) -> None:
    """Raise unless ``buckets`` keeps the graph's int32 hash exact."""
    if not 1 <= buckets <= MAX_BUCKETS:
        raise ValueError(f"ngram buckets must be in [1, {MAX_BUCKETS}], got {buckets}")


def ngram_windows(max_len: int, max_n: int) -> int:
    """How many n-gram positions a name of ``max_len`` ids has (lengths 1..max_n)."""
    return sum(max_len + 1 - n + 1 for n in range(1, max_n + 1))


def ngram_features(
    ids: np.ndarray, buckets: int, max_n: int, end_id: int
) -> tuple[np.ndarray, np.ndarray]:
    """Bucket ids int32 [batch, K] and weights float32 [batch, K] of every n-gram position.

    ``K = ngram_windows(max_len, max_n)``; positions that do not count have weight 0 (their
    bucket is still a valid row). The graph's ``model.ngram_bag.ngram_features_tf`` matches it.
    """
    check_buckets(buckets)
    x = np.asarray(ids, np.int64)
    c = np.concatenate([x, np.full((len(x), 1), end_id, np.int64)], axis=1) + 1
    steps = c.shape[1]
    valid = (c != 1).astype(np.float32)
    hashes, masks = [], []
    for n in range(1, max_n + 1):
        width = steps - n + 1
        h = np.zeros((len(x), width), np.int64)
        for k in range(n):
            h = (h * HASH_PRIME + c[:, k : k + width]) % buckets
        hashes.append(h)
        masks.append(valid[:, :width] if n == 1 else valid[:, 1 : 1 + width])
    mask = np.concatenate(masks, axis=1)
    scale = np.float32(1.0) / np.sqrt(np.maximum(mask.sum(axis=1, keepdims=True), np.float32(1)))
    return np.concatenate(hashes, axis=1).astype(np.int32), (mask * scale).astype(np.float32)
