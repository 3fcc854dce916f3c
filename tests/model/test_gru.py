"""UnrolledGRU is Keras' GRU cell: same weights, same outputs, the same gradients from its
hand-written backward pass, and it survives save and load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # TensorFlow throughout

tf = pytest.importorskip("tensorflow")

from model.config import ModelConfig  # noqa: E402
from model.gru import UnrolledGRU, build_classifier, load_classifier  # noqa: E402

# The GRU alone (no n-gram bag): these tests hold it to the stock Keras GRU; the bag has its
# own (tests/model/test_ngram_bag.py).
CFG = ModelConfig(num_classes=5, vocab_size=11, max_len=7, embed_dim=4, units=6, ngram_buckets=0)


def _keras_reference(cfg: ModelConfig) -> tf.keras.Model:
    """The stock Keras layers the classifier used before: Bidirectional(GRU) + max pooling."""
    ids = tf.keras.Input(shape=(cfg.max_len,), dtype=tf.int32)
    h = tf.keras.layers.Embedding(cfg.vocab_size, cfg.embed_dim)(ids)
    gru = tf.keras.layers.GRU(cfg.units, unroll=True, return_sequences=True, reset_after=True)
    h = tf.keras.layers.Bidirectional(gru)(h) if cfg.bidirectional else gru(h)
    h = tf.keras.layers.GlobalMaxPooling1D()(h)
    return tf.keras.Model(ids, tf.keras.layers.Dense(cfg.num_classes)(h))


@pytest.mark.parametrize("bidirectional", [True, False])
def test_unrolled_gru_matches_keras_gru_on_the_same_weights(bidirectional: bool) -> None:
    cfg = ModelConfig(**{**CFG.to_dict(), "bidirectional": bidirectional})
    ours, reference = build_classifier(cfg), _keras_reference(cfg)
    # Non-zero biases, so both bias rows (input and recurrent) are exercised.
    rng = np.random.default_rng(0)
    weights = [rng.normal(0, 0.5, w.shape).astype(np.float32) for w in reference.get_weights()]
    reference.set_weights(weights)
    ours.set_weights(weights)
    ids = rng.integers(0, cfg.vocab_size, (16, cfg.max_len)).astype(np.int32)
    ids[:4, :3] = 0  # left padding, as the vocabulary encodes short names
    got = ours(ids, training=False).numpy()
    want = reference(ids, training=False).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def _gradients(model: tf.keras.Model, ids: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
    with tf.GradientTape() as tape:
        logits = model(ids, training=False)
        loss = tf.reduce_mean(
            tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        )
    return [tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, model.trainable_weights)]


@pytest.mark.parametrize(
    ("hand_written", "bidirectional", "max_len"),
    [(True, True, 7), (True, False, 7), (True, True, 1), (False, True, 7)],
)
def test_the_gradients_equal_the_stock_keras_gru(
    hand_written: bool, bidirectional: bool, max_len: int
) -> None:
    # Every weight's gradient, through left padding, both reading directions and the max
    # over time; a single step (no recurrent matmul at all) is the edge case.
    cfg = ModelConfig(**{**CFG.to_dict(), "bidirectional": bidirectional, "max_len": max_len})
    ours, reference = build_classifier(cfg, hand_written), _keras_reference(cfg)
    rng = np.random.default_rng(1)
    weights = [rng.normal(0, 0.5, w.shape).astype(np.float32) for w in reference.get_weights()]
    reference.set_weights(weights)
    ours.set_weights(weights)
    ids = rng.integers(0, cfg.vocab_size, (16, cfg.max_len)).astype(np.int32)
    ids[:4, : min(3, max_len - 1)] = 0
    labels = rng.integers(0, cfg.num_classes, 16)
    got, want = _gradients(ours, ids, labels), _gradients(reference, ids, labels)
    assert len(got) == len(want) == len(weights)
    recurrent = (cfg.units, 3 * cfg.units)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        # Every weight receives a gradient, but for the recurrent kernel of a single step.
        assert np.abs(w).max() > 0 or (max_len == 1 and w.shape == recurrent)
        np.testing.assert_allclose(g, w, atol=2e-6)


def test_a_saved_classifier_loads_back_with_the_same_logits(tmp_path: Path) -> None:
    model = build_classifier(CFG)
    ids = np.arange(3 * CFG.max_len, dtype=np.int32).reshape(3, CFG.max_len) % CFG.vocab_size
    model.save(tmp_path / "m.keras")
    loaded = load_classifier(tmp_path / "m.keras")
    assert any(isinstance(layer, UnrolledGRU) for layer in loaded.layers)
    np.testing.assert_array_equal(loaded(ids).numpy(), model(ids).numpy())
