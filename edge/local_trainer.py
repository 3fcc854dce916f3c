"""What the fleet client needs from a Pi's trainer, and the epoch loop every trainer shares.

Two trainers run the same model's SGD step: :class:`edge.trainer.OnDeviceTrainer` through the
``train`` signature of ``train.tflite`` (a TFLite runtime), and
:class:`edge.numpy_trainer.NumpyTrainer` in numpy alone, for a Pi with no runtime whose
``train`` works (issue 17). :class:`LocalTrainer` is the part of them a round uses, so one can
be swapped for the other. Both draw their batches through :func:`run_epochs`, so the same rng
gives the same batches, padding and step cap on either: their updates differ by float
rounding only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from edge.runtime import check_ids
from model.manifest import ModelManifest

#: One fixed-size batch: ids [batch, max_len] int32, labels [batch] int32, weights [batch] f32.
Batch = tuple[np.ndarray, np.ndarray, np.ndarray]
#: One SGD step on a batch at a learning rate, returning the batch's weighted mean loss.
StepFn = Callable[[np.ndarray, np.ndarray, np.ndarray, float], float]


@runtime_checkable
class LocalTrainer(Protocol):
    """A model directory's trainer as a federated round uses it (load, train, read back)."""

    manifest: ModelManifest
    batch: int

    def set_weights(self, weights: np.ndarray | list[np.ndarray]) -> None:
        """Load the global weights a round starts from (flat vector or tensor list)."""
        ...

    def flat_weights(self) -> np.ndarray:
        """The current weights as one float32 vector in manifest order (the update's base)."""
        ...

    def train_epochs(
        self,
        ids: np.ndarray,
        labels: np.ndarray,
        epochs: int,
        lr: float,
        rng: np.random.Generator,
        sample_weights: np.ndarray | None = None,
        max_steps: int | None = None,
    ) -> list[float]:
        """Shuffled SGD epochs over local data; the mean loss of each epoch."""
        ...


def fixed_batches(
    ids: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    order: np.ndarray,
    batch: int,
    max_len: int,
) -> list[Batch]:
    """``order``'s rows in batches of exactly ``batch``, the last padded with weight-0 rows.

    Why: the ``train`` signature has a fixed batch, and padding with weight 0 makes every
    example count exactly once per epoch.
    """
    out = []
    for start in range(0, len(order), batch):
        sel = order[start : start + batch]
        pad = batch - len(sel)
        x = np.concatenate([ids[sel], np.zeros((pad, max_len), np.int32)])
        y = np.concatenate([labels[sel], np.zeros(pad, np.int32)]).astype(np.int32)
        w = np.concatenate([weights[sel], np.zeros(pad, np.float32)]).astype(np.float32)
        out.append((x, y, w))
    return out


def run_epochs(
    step: StepFn,
    ids: np.ndarray,
    labels: np.ndarray,
    epochs: int,
    lr: float,
    rng: np.random.Generator,
    batch: int,
    max_len: int,
    sample_weights: np.ndarray | None = None,
    max_steps: int | None = None,
) -> list[float]:
    """Shuffled SGD epochs through ``step``; returns the mean loss of each epoch.

    One permutation of ``rng`` per epoch, then :func:`fixed_batches`. ``max_steps`` stops after
    that many batches in all (the last epoch may be partial and its loss is the mean over the
    batches it ran): more frequent averaging with fewer local steps is what the simulation
    found to keep FedAvg level with centralized training (docs/simulation.md).
    """
    check_ids(ids, max_len)
    if len(labels) != len(ids) or len(ids) == 0:
        raise ValueError(f"need as many labels as names (>0), got {len(labels)} and {len(ids)}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1 or None, got {max_steps}")
    weights = np.ones(len(ids), np.float32) if sample_weights is None else sample_weights
    losses: list[float] = []
    budget = max_steps
    for _ in range(epochs):
        batches = fixed_batches(ids, labels, weights, rng.permutation(len(ids)), batch, max_len)
        if budget is not None:
            batches = batches[:budget]
            budget -= len(batches)
        losses_w = [step(x, y, w, lr) * w.sum() for x, y, w in batches]
        losses.append(float(np.sum(losses_w) / sum(w.sum() for _, _, w in batches)))
        if budget == 0:
            break
    return losses


class EpochTrainer:
    """What both trainers share: the batch checks and epochs of fixed batches through their own
    one-batch ``train_step``, so the two cannot drift apart in how they walk the data."""

    batch: int
    max_len: int

    def train_step(self, x: np.ndarray, y: np.ndarray, w: np.ndarray, lr: float) -> float:
        """One SGD step on exactly one fixed-size batch; returns the weighted loss."""
        raise NotImplementedError

    def check_batch(self, x: np.ndarray, y: np.ndarray, w: np.ndarray) -> None:
        """Refuse a batch the ``train`` signature could not take (ids, then shapes)."""
        check_ids(x, self.max_len)
        if x.shape[0] != self.batch or y.shape != (self.batch,) or w.shape != (self.batch,):
            raise ValueError(f"train_step needs a batch of exactly {self.batch} rows")

    def train_epochs(
        self,
        ids: np.ndarray,
        labels: np.ndarray,
        epochs: int,
        lr: float,
        rng: np.random.Generator,
        sample_weights: np.ndarray | None = None,
        max_steps: int | None = None,
    ) -> list[float]:
        """Shuffled SGD epochs over local data; returns the mean loss of each epoch
        (:func:`run_epochs`: the same ``rng`` gives the same batches on either trainer)."""
        return run_epochs(
            self.train_step,
            ids,
            labels,
            epochs,
            lr,
            rng,
            self.batch,
            self.max_len,
            sample_weights,
            max_steps,
        )
