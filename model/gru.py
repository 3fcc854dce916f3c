"""The ARM-friendly GRU surname classifier (TensorFlow / Keras).

Embedding -> (Bi)GRU unrolled over the fixed name length -> max over time -> Dense logits.
``unroll=True`` is what makes every export use TFLite builtin ops only: a stock Keras GRU lowers
to a TensorList while-loop that needs Flex (select TF) ops, which tflite-runtime does not have.
Max-pooling over time makes the prediction insensitive to the left padding.
"""

from __future__ import annotations

import tensorflow as tf

from model.config import ModelConfig


def build_classifier(cfg: ModelConfig) -> tf.keras.Model:
    """A Keras model mapping int32 ids [batch, max_len] to float logits [batch, num_classes]."""
    ids = tf.keras.Input(shape=(cfg.max_len,), dtype=tf.int32, name="ids")
    h = tf.keras.layers.Embedding(cfg.vocab_size, cfg.embed_dim, name="embed")(ids)
    if cfg.embed_dropout > 0:
        h = tf.keras.layers.SpatialDropout1D(cfg.embed_dropout, name="embed_dropout")(h)
    gru = tf.keras.layers.GRU(cfg.units, unroll=True, return_sequences=True, name="gru")
    h = tf.keras.layers.Bidirectional(gru, name="bigru")(h) if cfg.bidirectional else gru(h)
    h = tf.keras.layers.GlobalMaxPooling1D(name="pool")(h)
    if cfg.dropout > 0:
        h = tf.keras.layers.Dropout(cfg.dropout, name="dropout")(h)
    logits = tf.keras.layers.Dense(cfg.num_classes, name="logits")(h)
    return tf.keras.Model(ids, logits, name="surname_gru")


def weighted_cross_entropy(
    logits: tf.Tensor, labels: tf.Tensor, weights: tf.Tensor, num_classes: int
) -> tf.Tensor:
    """Weighted mean cross-entropy written with builtin ops only.

    ``tf.nn.sparse_softmax_cross_entropy_with_logits`` lowers to a Flex op, so the on-device
    train signature uses one_hot * log_softmax instead. A weight of 0 masks a padding row.
    """
    per_row = -tf.reduce_sum(tf.one_hot(labels, num_classes) * tf.nn.log_softmax(logits), axis=1)
    return tf.reduce_sum(per_row * weights) / tf.maximum(tf.reduce_sum(weights), 1e-6)
