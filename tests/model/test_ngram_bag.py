"""The n-gram bag in the graph follows model.ngrams, and the tau rule keeps both metrics."""

from __future__ import annotations

import numpy as np
import pytest

from model.ngrams import ngram_features

pytestmark = pytest.mark.slow  # starts TensorFlow


def _ids(rng: np.random.Generator, n: int, vocab: int, length: int) -> np.ndarray:
    x = rng.integers(2, vocab, (n, length)).astype(np.int32)
    for row in x:
        row[: rng.integers(0, length + 1)] = 0  # left padding, empty names included
    return x


def test_the_graph_hashes_and_weighs_exactly_as_numpy() -> None:
    import tensorflow as tf

    from model.ngram_bag import ngram_features_tf

    x = _ids(np.random.default_rng(0), 200, 458, 16)
    buckets, weights = ngram_features(x, 8192, 5, 458)
    tb, tw = ngram_features_tf(tf.constant(x), 8192, 5, 458)
    assert np.array_equal(buckets, tb.numpy())
    np.testing.assert_allclose(weights, tw.numpy(), atol=1e-7)


def test_the_classifier_adds_the_bags_weighted_rows_to_the_gru_logits() -> None:
    import tensorflow as tf

    from model.config import ModelConfig
    from model.gru import build_classifier

    tf.keras.utils.set_random_seed(0)
    cfg = ModelConfig(
        num_classes=5,
        vocab_size=30,
        max_len=8,
        embed_dim=4,
        units=6,
        ngram_buckets=64,
        dropout=0.0,
        embed_dropout=0.0,
    )
    with_bag = build_classifier(cfg)
    table = np.random.default_rng(1).normal(size=(64, 5)).astype(np.float32)
    weights = with_bag.get_weights()
    with_bag.set_weights([*weights[:-1], table])
    alone = build_classifier(ModelConfig(**{**cfg.to_dict(), "ngram_buckets": 0}))
    alone.set_weights(weights[:-1])
    assert with_bag.trainable_variables[-1].name.startswith("ngram_bag")
    x = _ids(np.random.default_rng(2), 16, 30, 8)
    buckets, w = ngram_features(x, 64, 5, 30)
    expected = alone(x).numpy() + (table[buckets] * w[..., None]).sum(axis=1)
    np.testing.assert_allclose(with_bag(x).numpy(), expected, atol=1e-5)


def test_tau_is_the_most_balanced_within_the_accuracy_budget() -> None:
    from model.train import choose_tau

    curve = [
        {"tau": 0.0, "accuracy": 0.83, "balanced_accuracy": 0.45},
        {"tau": 0.25, "accuracy": 0.84, "balanced_accuracy": 0.53},
        {"tau": 0.5, "accuracy": 0.825, "balanced_accuracy": 0.58},
        {"tau": 0.75, "accuracy": 0.79, "balanced_accuracy": 0.61},
    ]
    assert choose_tau(curve, 0.02) == 0.5
    assert choose_tau(curve, 0.0) == 0.25
    assert choose_tau(curve, 0.06) == 0.75
