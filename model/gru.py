"""The ARM-friendly GRU surname classifier (TensorFlow / Keras).

Embedding -> (Bi)GRU unrolled over the fixed name length -> max over time -> Dense logits.

The recurrence is :class:`UnrolledGRU`, the same cell as Keras' ``GRU(reset_after=True)`` with
the same weights, written out step by step for TFLite:

- A stock Keras GRU lowers to a TensorList while-loop that needs Flex (select TF) ops, which
  the TFLite runtimes do not have. Unrolling over the fixed length gives builtin ops only.
- It projects every character's input in one matmul before the loop and shares one recurrent
  matmul per step. Keras' own ``unroll=True`` projects step by step, and the int8 converter then
  kept two differently quantised copies of each recurrent kernel plus per-step metadata (an int8
  file 0.53x the float one; 0.36x with this cell at 20 steps, see BUILD_NOTES.md).
- It returns the max over time directly. Max-pooling makes the prediction insensitive to the
  left padding, and the order of time steps does not matter to it.
"""

from __future__ import annotations

import os
from typing import Any

import tensorflow as tf

from model.config import ModelConfig


@tf.keras.utils.register_keras_serializable(package="pifed")
class UnrolledGRU(tf.keras.layers.Layer):
    """A GRU (``reset_after`` form) over a fixed length, returning the max over time.

    Weights match ``tf.keras.layers.GRU``: ``kernel`` [in, 3u], ``recurrent_kernel`` [u, 3u] and
    ``bias`` [2, 3u] (input and recurrent biases), gates in the order z, r, h.
    """

    def __init__(self, units: int, go_backwards: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = int(units)
        self.go_backwards = bool(go_backwards)

    def build(self, input_shape: tf.TensorShape) -> None:
        """Create the three weights for inputs of width ``input_shape[-1]``."""
        u = self.units
        self.kernel = self.add_weight(
            name="kernel", shape=(int(input_shape[-1]), 3 * u), initializer="glorot_uniform"
        )
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel", shape=(u, 3 * u), initializer="orthogonal"
        )
        self.bias = self.add_weight(name="bias", shape=(2, 3 * u), initializer="zeros")
        super().build(input_shape)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        """[batch, steps, features] -> [batch, units]: the max of the hidden states."""
        u, steps, width = self.units, int(inputs.shape[1]), int(inputs.shape[2])
        # unstack, not bias[0]: the gradient of a strided slice is a Flex op.
        input_bias, recurrent_bias = tf.unstack(self.bias)
        projected = tf.matmul(tf.reshape(inputs, [-1, width]), self.kernel) + input_bias
        x_zr, x_h = tf.split(tf.reshape(projected, [-1, steps, 3 * u]), [2 * u, u], axis=-1)
        x_zr, x_h = tf.unstack(x_zr, axis=1), tf.unstack(x_h, axis=1)
        order = range(steps - 1, -1, -1) if self.go_backwards else range(steps)
        h: tf.Tensor | None = None
        states = []
        for t in order:
            # The state starts at zero, so the first step's recurrent term is its bias alone.
            recurrent = recurrent_bias
            if h is not None:
                recurrent = tf.matmul(h, self.recurrent_kernel) + recurrent_bias
            r_zr, r_h = tf.split(recurrent, [2 * u, u], axis=-1)
            z, r = tf.split(tf.sigmoid(x_zr[t] + r_zr), 2, axis=-1)
            candidate = tf.tanh(x_h[t] + r * r_h)
            # h' = z * h + (1 - z) * candidate
            h = candidate - z * candidate if h is None else candidate + z * (h - candidate)
            states.append(h)
        return tf.reduce_max(tf.stack(states, axis=1), axis=1)

    def get_config(self) -> dict[str, Any]:
        """Keras serialisation: what ``load_classifier`` needs to rebuild the layer."""
        return {**super().get_config(), "units": self.units, "go_backwards": self.go_backwards}


def build_classifier(cfg: ModelConfig) -> tf.keras.Model:
    """A Keras model mapping int32 ids [batch, max_len] to float logits [batch, num_classes]."""
    ids = tf.keras.Input(shape=(cfg.max_len,), dtype=tf.int32, name="ids")
    h = tf.keras.layers.Embedding(cfg.vocab_size, cfg.embed_dim, name="embed")(ids)
    if cfg.embed_dropout > 0:
        h = tf.keras.layers.SpatialDropout1D(cfg.embed_dropout, name="embed_dropout")(h)
    pooled = UnrolledGRU(cfg.units, name="gru_forward")(h)
    if cfg.bidirectional:
        backward = UnrolledGRU(cfg.units, go_backwards=True, name="gru_backward")(h)
        pooled = tf.keras.layers.Concatenate(name="bigru")([pooled, backward])
    if cfg.dropout > 0:
        pooled = tf.keras.layers.Dropout(cfg.dropout, name="dropout")(pooled)
    logits = tf.keras.layers.Dense(cfg.num_classes, name="logits")(pooled)
    return tf.keras.Model(ids, logits, name="surname_gru")


def load_classifier(path: str | os.PathLike[str]) -> tf.keras.Model:
    """Load a saved ``keras_model.keras`` (it needs :class:`UnrolledGRU` registered)."""
    return tf.keras.models.load_model(path, custom_objects={"UnrolledGRU": UnrolledGRU})


def weighted_cross_entropy(
    logits: tf.Tensor, labels: tf.Tensor, weights: tf.Tensor, num_classes: int
) -> tf.Tensor:
    """Weighted mean cross-entropy written with builtin ops only.

    ``tf.nn.sparse_softmax_cross_entropy_with_logits`` lowers to a Flex op, so the on-device
    train signature uses one_hot * log_softmax instead. A weight of 0 masks a padding row.
    """
    per_row = -tf.reduce_sum(tf.one_hot(labels, num_classes) * tf.nn.log_softmax(logits), axis=1)
    return tf.reduce_sum(per_row * weights) / tf.maximum(tf.reduce_sum(weights), 1e-6)
