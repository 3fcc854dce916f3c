"""The hashed character n-gram bag beside the GRU (TensorFlow / Keras).

A fastText-style embedding bag: every counted character 1-5-gram of the name (``model.ngrams``
defines the hashing and weights) looks up a row of ``table`` [buckets, num_classes], and the
weighted rows add straight to the GRU's logits. It is a linear n-gram classifier inside the
same model, trained jointly, with one float weight tensor that rounds average like any other.

The buckets are computed in the graph from the char ids (STRIDED_SLICE, MUL, ADD, FLOOR_MOD on
int32, then GATHER), so every export stays builtins-only with the single ids input.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from model.ngrams import HASH_PRIME, check_buckets


def ngram_features_tf(
    ids: tf.Tensor, buckets: int, max_n: int, end_id: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """The graph form of ``model.ngrams.ngram_features``: same buckets, same weights."""
    c = tf.concat([ids, tf.ones_like(ids[:, :1]) * end_id], axis=1) + 1
    steps = int(c.shape[1])
    valid = tf.cast(tf.not_equal(c, 1), tf.float32)
    hashes, masks = [], []
    for n in range(1, max_n + 1):
        width = steps - n + 1
        h = c[:, :width] % buckets
        for k in range(1, n):
            h = tf.math.floormod(h * HASH_PRIME + c[:, k : k + width], buckets)
        hashes.append(h)
        masks.append(valid[:, :width] if n == 1 else valid[:, 1 : 1 + width])
    mask = tf.concat(masks, axis=1)
    scale = tf.math.rsqrt(tf.maximum(tf.reduce_sum(mask, axis=1, keepdims=True), 1.0))
    return tf.concat(hashes, axis=1), mask * scale


@tf.keras.utils.register_keras_serializable(package="pifed")
class NgramBag(tf.keras.layers.Layer):
    """int32 ids [batch, max_len] -> logits [batch, num_classes] from hashed n-grams."""

    def __init__(self, buckets: int, max_n: int, num_classes: int, end_id: int, **kwargs: Any):
        super().__init__(**kwargs)
        check_buckets(int(buckets))
        self.buckets, self.max_n = int(buckets), int(max_n)
        self.num_classes, self.end_id = int(num_classes), int(end_id)

    def build(self, input_shape: tf.TensorShape) -> None:
        """One table row per bucket; zeros, so training starts from the GRU alone."""
        self.table = self.add_weight(
            name="table", shape=(self.buckets, self.num_classes), initializer="zeros"
        )
        super().build(input_shape)

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        """The weighted sum of the n-grams' table rows."""
        hashed, weights = ngram_features_tf(ids, self.buckets, self.max_n, self.end_id)
        return tf.reduce_sum(tf.gather(self.table, hashed) * weights[..., None], axis=1)

    def get_config(self) -> dict[str, Any]:
        """Keras serialisation: what ``load_classifier`` needs to rebuild the layer."""
        return {
            **super().get_config(),
            "buckets": self.buckets,
            "max_n": self.max_n,
            "num_classes": self.num_classes,
            "end_id": self.end_id,
        }
