"""The ``train`` signature of ``train.tflite``, written in numpy: a Pi trains with no runtime.

Why: a Pi whose TFLite runtime cannot train (tflite-runtime has no wheel for Python >= 3.12;
ai-edge-litert segfaulted in the ``train`` signature on aarch64 until the rate was fed as shape
[1]; a future runtime may break again) must still take part in federated rounds. This trainer
runs the same model and the same SGD step on numpy alone; ``edge.trainer_choice`` falls back to
it when a probe of train.tflite fails.

It is the program ``model.export.convert_train_artifact`` builds, step for step, in float32:

- embedding lookup -> one or two :class:`model.gru.UnrolledGRU` (the Keras ``GRU`` cell with
  ``reset_after=True``: gates z, r, h; ``bias`` [2, 3u] = input and recurrent biases; the
  state starts at zero), the second reading the name backwards -> max over time of each ->
  concatenated -> dense logits; no dropout (the signature runs with ``training=False``);
- plus, when the config has ``ngram_buckets``, the n-gram bag's logits
  (:class:`model.ngram_bag.NgramBag`: hashed n-grams from ``model.ngrams``, the last weight);
- loss ``sum_i w_i * CE_i / max(sum_i w_i, 1e-6)`` (``model.gru.weighted_cross_entropy``);
- the backward pass of ``model.gru._gru_max`` (hand-written BPTT, ties in the max share the
  gradient) and plain SGD ``v -= lr * grad`` on every weight.

The weights live in one flat float32 vector in the manifest's order (what rounds exchange),
with a view per tensor; shapes come from the manifest's model config. Batches are drawn by
:func:`edge.local_trainer.run_epochs`, as in :class:`edge.trainer.OnDeviceTrainer`, so either
trainer can be used (:class:`edge.local_trainer.LocalTrainer`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from edge.local_trainer import EpochTrainer
from edge.runtime import InputShapeError, check_ids
from model.config import ModelConfig
from model.manifest import ModelManifest, WeightShapeError, flatten_weights, unflatten_weights
from model.ngrams import ngram_features

F32 = np.float32


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # Callers run under np.errstate(over="ignore"): exp(-x) -> inf gives exactly 0, as it should.
    return F32(1.0) / (F32(1.0) + np.exp(-x))


@dataclass
class _GruTape:
    """What one GRU's forward pass keeps for BPTT, per step in reading order."""

    flat: np.ndarray  # its inputs [batch * steps, width], in time order
    states: list[np.ndarray]  # h after each step [batch, u]
    zr: list[np.ndarray]  # gates z, r after the sigmoid [batch, 2u]
    r: list[np.ndarray]  # reset gate [batch, u]
    z: list[np.ndarray]  # update gate [batch, u]
    c: list[np.ndarray]  # candidate [batch, u]
    d: list[np.ndarray | None]  # h_prev - c (None at the first step, where h_prev is zero)
    r_h: list[np.ndarray]  # the candidate's recurrent term h_prev @ R_h + b_h [batch, u]
    pooled: np.ndarray  # max over time [batch, u]


def gru_max_forward(
    inputs: np.ndarray,
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: np.ndarray,
    backwards: bool,
) -> _GruTape:
    """The GRU over ``inputs`` [batch, steps, width], max over time, keeping the tape.

    Why this shape of computation: it is ``model.gru._forward`` (one matmul projects every
    character, then one recurrent matmul per step), so the float32 results follow TFLite's.
    """
    batch, steps, width = inputs.shape
    u = recurrent_kernel.shape[0]
    flat = inputs.reshape(-1, width)
    # Time-major, so each step reads contiguous rows.
    projected = (flat @ kernel + bias[0]).reshape(batch, steps, 3 * u).transpose(1, 0, 2).copy()
    order = range(steps - 1, -1, -1) if backwards else range(steps)
    tape = _GruTape(flat, [], [], [], [], [], [], [], np.empty(0, F32))
    h: np.ndarray | None = None
    for t in order:
        # The state starts at zero, so the first step's recurrent term is its bias alone.
        recurrent = bias[1] if h is None else h @ recurrent_kernel + bias[1]
        zr = _sigmoid(projected[t, :, : 2 * u] + recurrent[..., : 2 * u])
        z, r = zr[:, :u], zr[:, u:]
        r_h = recurrent[..., 2 * u :]  # [u] at the first step, broadcast over the batch
        c = np.tanh(projected[t, :, 2 * u :] + r * r_h)
        # h' = z * h + (1 - z) * c
        d = None if h is None else h - c
        h_next = c - z * c if d is None else c + z * d
        h = h_next
        tape.states.append(h_next)
        tape.zr.append(zr)
        tape.z.append(z)
        tape.r.append(r)
        tape.c.append(c)
        tape.d.append(d)
        tape.r_h.append(r_h)
    tape.pooled = np.max(np.stack(tape.states), axis=0)
    return tape


def gru_max_backward(
    d_pooled: np.ndarray,
    tape: _GruTape,
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    backwards: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gradients (inputs, kernel, recurrent kernel, bias) from the gradient at the max.

    Why hand-written: it is ``model.gru._gru_max``'s backward pass line for line, which
    tests/model/test_gru.py checks against the stock Keras GRU's autodiff.
    """
    steps, u = len(tape.states), recurrent_kernel.shape[0]
    batch = d_pooled.shape[0]
    stacked = np.stack(tape.states)  # [steps, batch, u]
    # Max over time: the gradient goes to the maximal steps, shared among ties.
    hit = (stacked == tape.pooled).astype(F32)
    direct = hit * (d_pooled / hit.sum(axis=0))
    recurrent_t = np.ascontiguousarray(recurrent_kernel.T)
    d_h = np.empty((steps, batch, u), F32)  # at each candidate's pre-activation
    d_zr = np.empty((steps, batch, 2 * u), F32)  # at the gates' pre-activations
    d_rec = np.empty((steps, batch, 3 * u), F32)  # at each step's recurrent term
    carry: np.ndarray | None = None
    for i in range(steps - 1, -1, -1):
        zr, z, r, c, d, r_h = tape.zr[i], tape.z[i], tape.r[i], tape.c[i], tape.d[i], tape.r_h[i]
        dh = direct[i] if carry is None else carry + direct[i]
        dh_z = dh * z
        dc = dh - dh_z
        d_h[i] = dc - dc * c * c  # through tanh
        d_z = -(dh * c) if d is None else dh * d  # h' = c + z * (h_prev - c)
        d_zr[i] = np.concatenate([d_z, d_h[i] * r_h], axis=-1) * (zr - zr * zr)
        d_rec[i] = np.concatenate([d_zr[i], d_h[i] * r], axis=-1)
        if i > 0:
            carry = dh_z + d_rec[i] @ recurrent_t
    # From reading order back to time order, then through the input projection.
    d_projected = np.concatenate([d_zr, d_h], axis=-1).transpose(1, 0, 2)
    if backwards:
        d_projected = d_projected[:, ::-1]
    d_flat = np.ascontiguousarray(d_projected).reshape(-1, 3 * u)
    d_inputs = (d_flat @ kernel.T).reshape(batch, steps, -1)
    d_kernel = tape.flat.T @ d_flat
    d_rec_all = d_rec.reshape(-1, 3 * u)
    d_bias = np.stack([d_flat.sum(axis=0), d_rec_all.sum(axis=0)])
    # sum_t h_(t-1)^T d_rec_t as one matmul (a single step has no h_(t-1)).
    d_recurrent = np.zeros_like(recurrent_kernel)
    if steps > 1:
        before = stacked[:-1].reshape(-1, u)
        d_recurrent = before.T @ d_rec[1:].reshape(-1, 3 * u)
    return d_inputs, d_kernel, d_recurrent, d_bias


def weighted_cross_entropy_grad(
    logits: np.ndarray, labels: np.ndarray, weights: np.ndarray
) -> tuple[float, np.ndarray]:
    """The train signature's loss and its gradient at the logits.

    Why this exact form: ``model.gru.weighted_cross_entropy`` is one_hot * log_softmax,
    weighted and divided by ``max(sum(w), 1e-6)``; a weight of 0 masks a padding row.
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    log_softmax = shifted - np.log(total)
    rows = np.arange(len(labels))
    per_row = -log_softmax[rows, labels]
    scale = weights / max(F32(weights.sum()), F32(1e-6))
    loss = float((per_row * weights).sum() / max(F32(weights.sum()), F32(1e-6)))
    d_logits = exp / total
    d_logits[rows, labels] -= F32(1.0)
    return loss, (d_logits * scale[:, None]).astype(F32)


class NumpyTrainer(EpochTrainer):
    """A model directory's classifier, trained by SGD in numpy (no TensorFlow, no TFLite).

    It starts with no weights: a round loads the global model with :meth:`set_weights`
    (reading ``train.tflite``'s own initial weights would need a TFLite runtime).
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.manifest = ModelManifest.load(directory)
        # A manifest written before the n-gram bag existed has no bag.
        self.cfg = ModelConfig.from_dict(self.manifest.model_config)
        self.batch = self.manifest.train_batch
        self.max_len = self.manifest.vocab.max_len
        cfg, u, dirs = self.cfg, self.cfg.units, 2 if self.cfg.bidirectional else 1
        gru = [(cfg.embed_dim, 3 * u), (u, 3 * u), (2, 3 * u)]
        expected: list[tuple[int, ...]] = [(cfg.vocab_size, cfg.embed_dim), *gru * dirs]
        expected += [(dirs * u, cfg.num_classes), (cfg.num_classes,)]
        if cfg.ngram_buckets:
            expected.append((cfg.ngram_buckets, cfg.num_classes))
        # Where the dense logits layer's kernel sits (the bag's table follows it, if any).
        self._dense = 1 + 3 * dirs
        shapes = [w.shape for w in self.manifest.weights]
        if shapes != expected:
            raise WeightShapeError(
                f"{directory}: manifest weights {shapes} are not the GRU classifier of its "
                f"model config (expected {expected}); re-export the model"
            )
        self._flat: np.ndarray | None = None
        self._tensors: list[np.ndarray] = []

    def set_weights(self, weights: np.ndarray | list[np.ndarray]) -> None:
        """Load weights (a flat vector or a tensor list); shapes are checked first."""
        tensors = (
            unflatten_weights(self.manifest.weights, weights)
            if isinstance(weights, np.ndarray)
            else weights
        )
        self._flat = flatten_weights(self.manifest.weights, tensors)  # a fresh float32 copy
        # Views into the flat vector: an SGD step on a tensor updates the vector in place.
        self._tensors = unflatten_weights(self.manifest.weights, self._flat)

    def _loaded(self) -> np.ndarray:
        if self._flat is None:
            raise RuntimeError("NumpyTrainer has no weights yet: call set_weights first")
        return self._flat

    def weights(self) -> list[np.ndarray]:
        """Current weights, one array per trainable tensor, in manifest order (copies)."""
        self._loaded()
        return [t.copy() for t in self._tensors]

    def flat_weights(self) -> np.ndarray:
        """Current weights as one float32 vector (a copy)."""
        return self._loaded().copy()

    def _grus(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, bool]]:
        """(kernel, recurrent kernel, bias, reads backwards) of each GRU."""
        t = self._tensors
        grus = [(t[1], t[2], t[3], False)]
        if self.cfg.bidirectional:
            grus.append((t[4], t[5], t[6], True))
        return grus

    def _bag(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The n-gram bag's bucket ids and weights for ``x`` (None without a bag)."""
        cfg = self.cfg
        if not cfg.ngram_buckets:
            return None
        return ngram_features(x, cfg.ngram_buckets, cfg.ngram_max, cfg.vocab_size)

    def _forward(
        self, x: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, list[_GruTape], tuple[np.ndarray, np.ndarray] | None]:
        self._loaded()
        check_ids(x, self.max_len)
        if x.size and (x.min() < 0 or x.max() >= self.cfg.vocab_size):
            # numpy would wrap a negative id around silently; TFLite's gather refuses it.
            raise InputShapeError(f"ids must be in [0, {self.cfg.vocab_size}) for this model")
        emb = self._tensors[0][x]
        with np.errstate(over="ignore"):
            tapes = [gru_max_forward(emb, k, rk, b, back) for k, rk, b, back in self._grus()]
        pooled = np.concatenate([tape.pooled for tape in tapes], axis=-1)
        kernel, bias = self._tensors[self._dense], self._tensors[self._dense + 1]
        logits = pooled @ kernel + bias
        bag = self._bag(x)
        if bag is not None:
            buckets, weights = bag
            logits = logits + (self._tensors[-1][buckets] * weights[..., None]).sum(axis=1)
        return pooled, logits, tapes, bag

    def gradients(
        self, x: np.ndarray, y: np.ndarray, w: np.ndarray
    ) -> tuple[float, list[np.ndarray]]:
        """The weighted loss and its gradient for every weight (manifest order) on one batch.

        Why public: the SGD step is only this plus ``v -= lr * g``, and tests can check the
        gradient itself.
        """
        pooled, logits, tapes, bag = self._forward(x)
        loss, d_logits = weighted_cross_entropy_grad(logits, y, w.astype(F32))
        d_pooled = d_logits @ self._tensors[self._dense].T
        u = self.cfg.units
        grads: list[np.ndarray] = [np.zeros_like(self._tensors[0])]
        d_emb = np.zeros((*x.shape, self.cfg.embed_dim), F32)
        for j, ((kernel, recurrent, _, back), tape) in enumerate(
            zip(self._grus(), tapes, strict=True)
        ):
            d_in, d_k, d_rk, d_b = gru_max_backward(
                d_pooled[:, j * u : (j + 1) * u], tape, kernel, recurrent, back
            )
            d_emb += d_in
            grads += [d_k, d_rk, d_b]
        # The embedding's gradient: a scatter that adds, since a batch repeats characters.
        np.add.at(grads[0], x.ravel(), d_emb.reshape(-1, self.cfg.embed_dim))
        grads += [pooled.T @ d_logits, d_logits.sum(axis=0)]
        if bag is not None:
            # Each counted n-gram's row gets its weight times the logits' gradient (scattered
            # with add: names share n-grams, and hashing shares buckets).
            buckets, weights = bag
            d_table = np.zeros_like(self._tensors[-1])
            rows = (weights[..., None] * d_logits[:, None, :]).reshape(-1, self.cfg.num_classes)
            np.add.at(d_table, buckets.ravel(), rows)
            grads.append(d_table)
        return loss, grads

    def train_step(self, x: np.ndarray, y: np.ndarray, w: np.ndarray, lr: float) -> float:
        """One SGD step on exactly one fixed-size batch; returns the weighted loss."""
        self.check_batch(x, y, w)
        loss, grads = self.gradients(x, y.astype(np.int32), w)
        rate = F32(lr)
        for tensor, grad in zip(self._tensors, grads, strict=True):
            tensor -= rate * grad
        return loss

    def logits(self, ids: np.ndarray) -> np.ndarray:
        """float32 logits [n, classes] of the current weights (the ``infer`` signature)."""
        check_ids(ids, self.max_len)
        return self._forward(ids)[1].astype(F32)
