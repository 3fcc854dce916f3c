"""The ARM-friendly GRU surname classifier (TensorFlow / Keras).

Embedding -> (Bi)GRU unrolled over the fixed name length -> max over time -> Dense logits, plus
(by default) a hashed character n-gram bag's logits (model/ngram_bag.py) from the same ids.

The recurrence is :class:`UnrolledGRU`, the same cell as Keras' ``GRU(reset_after=True)`` with
the same weights, written out step by step for TFLite:

- A stock Keras GRU lowers to a TensorList while-loop that needs Flex (select TF) ops, which
  the TFLite runtimes do not have. Unrolling over the fixed length gives builtin ops only.
- It projects every character's input in one matmul before the loop and shares one recurrent
  matmul per step. Keras' own ``unroll=True`` projects step by step, and the int8 converter then
  kept two differently quantised copies of each recurrent kernel plus per-step metadata (an int8
  file 0.53x the float one; 0.36x with this cell at 20 steps, see BUILD_NOTES.md).
- For the TFLite ``train`` program its backward pass is written by hand (:func:`_gru_max`):
  one matmul over all steps for the recurrent kernel's gradient instead of one per step, and
  products a TFLite runtime runs as BATCH_MATMUL. The step is about 40% faster on
  tflite-runtime; Keras training keeps TensorFlow's autodiff, as fast there.
- It returns the max over time directly. Max-pooling makes the prediction insensitive to the
  left padding, and the order of time steps does not matter to it.
"""

from __future__ import annotations

import os
from typing import Any

import tensorflow as tf

from model.config import ModelConfig
from model.ngram_bag import NgramBag


@tf.keras.utils.register_keras_serializable(package="pifed")
class UnrolledGRU(tf.keras.layers.Layer):
    """A GRU (``reset_after`` form) over a fixed length, returning the max over time.

    Weights match ``tf.keras.layers.GRU``: ``kernel`` [in, 3u], ``recurrent_kernel`` [u, 3u] and
    ``bias`` [2, 3u] (input and recurrent biases), gates in the order z, r, h.
    """

    def __init__(
        self,
        units: int,
        go_backwards: bool = False,
        hand_written_backward: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.units = int(units)
        self.go_backwards = bool(go_backwards)
        # Same forward, same gradients; True for the TFLite train program (see _gru_max).
        self.hand_written_backward = bool(hand_written_backward)

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
        steps = int(inputs.shape[1])
        order = list(range(steps - 1, -1, -1) if self.go_backwards else range(steps))
        if self.hand_written_backward:
            return _gru_max(inputs, self.kernel, self.recurrent_kernel, self.bias, order)
        states, _ = _forward(inputs, self.kernel, self.recurrent_kernel, self.bias, order)
        return tf.reduce_max(tf.stack(states, axis=1), axis=1)

    def get_config(self) -> dict[str, Any]:
        """Keras serialisation: what ``load_classifier`` needs to rebuild the layer."""
        return {
            **super().get_config(),
            "units": self.units,
            "go_backwards": self.go_backwards,
            "hand_written_backward": self.hand_written_backward,
        }


#: What one step keeps for the backward pass: gates zr, update gate z, reset gate r,
#: candidate c, h_prev - c (None at the first step, where h_prev is zero) and the candidate's
#: recurrent term.
_Step = tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, "tf.Tensor | None", tf.Tensor]


def _forward(
    inputs: tf.Tensor,
    kernel: tf.Tensor,
    recurrent_kernel: tf.Tensor,
    bias: tf.Tensor,
    order: list[int],
) -> tuple[list[tf.Tensor], list[_Step]]:
    """The GRU's hidden states in reading ``order``, and what each step keeps for BPTT.

    It projects every character's input in one matmul, then runs the recurrence step by step.
    """
    u, steps, width = int(recurrent_kernel.shape[0]), len(order), int(inputs.shape[2])
    # unstack, not bias[0]: the gradient of a strided slice is a Flex op.
    input_bias, recurrent_bias = tf.unstack(bias)
    projected = tf.matmul(tf.reshape(inputs, [-1, width]), kernel) + input_bias
    x_zr, x_h = tf.split(tf.reshape(projected, [-1, steps, 3 * u]), [2 * u, u], axis=-1)
    x_zr_t, x_h_t = tf.unstack(x_zr, axis=1), tf.unstack(x_h, axis=1)
    h: tf.Tensor | None = None
    states: list[tf.Tensor] = []
    saved: list[_Step] = []
    for t in order:
        # The state starts at zero, so the first step's recurrent term is its bias alone.
        recurrent = recurrent_bias
        if h is not None:
            recurrent = tf.matmul(h, recurrent_kernel) + recurrent_bias
        r_zr, r_h = tf.split(recurrent, [2 * u, u], axis=-1)
        zr = tf.sigmoid(x_zr_t[t] + r_zr)
        z, r = tf.split(zr, 2, axis=-1)
        candidate = tf.tanh(x_h_t[t] + r * r_h)
        # h' = z * h + (1 - z) * candidate
        d = None if h is None else h - candidate
        h = candidate - z * candidate if d is None else candidate + z * d
        saved.append((zr, z, r, candidate, d, r_h))
        states.append(h)
    return states, saved


def _matmul_t(a: tf.Tensor, b_t: tf.Tensor) -> tf.Tensor:
    """``a @ b_t[0]`` for a [rows, k] and b_t [1, k, n], kept a BATCH_MATMUL in TFLite.

    The converter turns a rank-2 matmul against a transposed variable into FULLY_CONNECTED,
    which tflite-runtime runs about 2.3x slower than BATCH_MATMUL when the weights are not
    constants, as in the ``train`` signature (30 [32, 384] x [384, 128] products: 2.81 ms
    against 1.23 ms, BUILD_NOTES.md). A leading batch axis of 1 keeps it a BATCH_MATMUL.
    """
    return tf.squeeze(tf.matmul(tf.expand_dims(a, 0), b_t), 0)


def _gru_max(
    inputs: tf.Tensor,
    kernel: tf.Tensor,
    recurrent_kernel: tf.Tensor,
    bias: tf.Tensor,
    order: list[int],
) -> tf.Tensor:
    """The GRU over ``inputs`` [batch, steps, width], max over time, with hand-written BPTT.

    Weights as in :class:`UnrolledGRU`; ``order`` lists the time steps in the order they are
    read. Why a hand-written backward pass: TensorFlow's gradient of the unrolled loop is one
    small matmul per step for the recurrent kernel, chained through AddN, plus the generic
    sigmoid/tanh/max gradients, and its products against transposed weights become slow
    FULLY_CONNECTED ops in TFLite. Here the recurrent kernel's gradient is one matmul over all
    steps and each step's backward is a dozen element-wise ops and one BATCH_MATMUL. It
    computes the same gradient (tests/model/test_gru.py checks it against the stock Keras GRU)
    and makes the TFLite ``train`` step a Pi runs about 40% faster (BUILD_NOTES.md,
    "Hand-written BPTT").
    """
    u, steps, width = int(recurrent_kernel.shape[0]), len(order), int(inputs.shape[2])

    @tf.custom_gradient
    def gru(
        inputs: tf.Tensor, kernel: tf.Tensor, recurrent_kernel: tf.Tensor, bias: tf.Tensor
    ) -> tuple[tf.Tensor, Any]:
        states, saved = _forward(inputs, kernel, recurrent_kernel, bias, order)
        stacked = tf.stack(states, axis=1)
        pooled = tf.reduce_max(stacked, axis=1)

        def backward(d_pooled: tf.Tensor) -> tuple[tf.Tensor, ...]:
            # Max over time: the gradient goes to the maximal steps, shared among ties (as
            # TensorFlow's own reduce_max gradient does).
            hit = tf.cast(tf.equal(stacked, tf.expand_dims(pooled, 1)), stacked.dtype)
            share = tf.expand_dims(d_pooled / tf.reduce_sum(hit, axis=1), 1)
            direct = tf.unstack(hit * share, axis=1)
            recurrent_t = tf.expand_dims(tf.transpose(recurrent_kernel), 0)
            # Gradients at each step's candidate pre-activation, gate pre-activations and
            # recurrent term, gathered last step first.
            d_h: list[tf.Tensor] = []
            d_zr: list[tf.Tensor] = []
            d_rec: list[tf.Tensor] = []
            carry: tf.Tensor | None = None
            for i in range(steps - 1, -1, -1):
                zr, z, r, c, d, r_h = saved[i]
                dh = direct[i] if carry is None else carry + direct[i]
                dh_z = dh * z
                dc = dh - dh_z
                d_h.append(dc - dc * c * c)  # through tanh
                d_z = -(dh * c) if d is None else dh * d  # h' = c + z * (h_prev - c)
                d_zr.append(tf.concat([d_z, d_h[-1] * r_h], axis=-1) * (zr - zr * zr))
                d_rec.append(tf.concat([d_zr[-1], d_h[-1] * r], axis=-1))
                if i > 0:
                    carry = dh_z + _matmul_t(d_rec[-1], recurrent_t)
            for grads in (d_h, d_zr, d_rec):
                grads.reverse()  # now in reading order
            # Back from reading order to time order, then through the input projection.
            position = {t: i for i, t in enumerate(order)}
            d_projected = tf.concat(
                [
                    tf.stack([d_zr[position[t]] for t in range(steps)], axis=1),
                    tf.stack([d_h[position[t]] for t in range(steps)], axis=1),
                ],
                axis=-1,
            )
            flat = tf.reshape(inputs, [-1, width])
            d_flat = tf.reshape(d_projected, [-1, 3 * u])
            d_inputs = _matmul_t(d_flat, tf.expand_dims(tf.transpose(kernel), 0))
            d_kernel = tf.matmul(flat, d_flat, transpose_a=True)
            d_rec_all = tf.reshape(tf.stack(d_rec), [-1, 3 * u])
            d_bias = tf.stack([tf.reduce_sum(d_flat, axis=0), tf.reduce_sum(d_rec_all, axis=0)])
            # sum_t h_(t-1)^T d_rec_t as one matmul (a single step has no h_(t-1)).
            d_recurrent_kernel = tf.zeros_like(recurrent_kernel)
            if steps > 1:
                before = tf.reshape(tf.stack(states[:-1]), [-1, u])
                d_recurrent_kernel = tf.matmul(
                    before, tf.reshape(tf.stack(d_rec[1:]), [-1, 3 * u]), transpose_a=True
                )
            return (
                tf.reshape(d_inputs, [-1, steps, width]),
                d_kernel,
                d_recurrent_kernel,
                d_bias,
            )

        return pooled, backward

    return gru(inputs, kernel, recurrent_kernel, bias)


def build_classifier(cfg: ModelConfig, hand_written_backward: bool = False) -> tf.keras.Model:
    """A Keras model mapping int32 ids [batch, max_len] to float logits [batch, num_classes].

    ``hand_written_backward`` builds the GRUs with :func:`_gru_max`'s backward pass: the same
    model and gradients, for the TFLite ``train`` program. Keras training keeps TensorFlow's
    autodiff, which was as fast there (BUILD_NOTES.md, "Hand-written BPTT").
    """
    ids = tf.keras.Input(shape=(cfg.max_len,), dtype=tf.int32, name="ids")
    h = tf.keras.layers.Embedding(cfg.vocab_size, cfg.embed_dim, name="embed")(ids)
    if cfg.embed_dropout > 0:
        h = tf.keras.layers.SpatialDropout1D(cfg.embed_dropout, name="embed_dropout")(h)
    pooled = UnrolledGRU(
        cfg.units, hand_written_backward=hand_written_backward, name="gru_forward"
    )(h)
    if cfg.bidirectional:
        backward = UnrolledGRU(
            cfg.units,
            go_backwards=True,
            hand_written_backward=hand_written_backward,
            name="gru_backward",
        )(h)
        pooled = tf.keras.layers.Concatenate(name="bigru")([pooled, backward])
    if cfg.dropout > 0:
        pooled = tf.keras.layers.Dropout(cfg.dropout, name="dropout")(pooled)
    logits = tf.keras.layers.Dense(cfg.num_classes, name="logits")(pooled)
    if cfg.ngram_buckets:
        # The n-gram bag's table is the last trainable weight (edge/numpy_trainer.py relies
        # on the order); the char vocabulary's size is its end marker.
        bag = NgramBag(
            cfg.ngram_buckets, cfg.ngram_max, cfg.num_classes, cfg.vocab_size, name="ngram_bag"
        )(ids)
        logits = tf.keras.layers.Add(name="logits_sum")([logits, bag])
    return tf.keras.Model(ids, logits, name="surname_gru")


def load_classifier(path: str | os.PathLike[str]) -> tf.keras.Model:
    """Load a saved ``keras_model.keras`` (it needs :class:`UnrolledGRU` registered)."""
    return tf.keras.models.load_model(
        path, custom_objects={"UnrolledGRU": UnrolledGRU, "NgramBag": NgramBag}
    )


def weighted_cross_entropy(
    logits: tf.Tensor, labels: tf.Tensor, weights: tf.Tensor, num_classes: int
) -> tf.Tensor:
    """Weighted mean cross-entropy written with builtin ops only.

    ``tf.nn.sparse_softmax_cross_entropy_with_logits`` lowers to a Flex op, so the on-device
    train signature uses one_hot * log_softmax instead. A weight of 0 masks a padding row.
    """
    per_row = -tf.reduce_sum(tf.one_hot(labels, num_classes) * tf.nn.log_softmax(logits), axis=1)
    return tf.reduce_sum(per_row * weights) / tf.maximum(tf.reduce_sum(weights), 1e-6)
