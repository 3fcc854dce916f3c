"""On-device training with a step cap (``pifed server --local-steps``), on the real train.tflite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.evaluate import labels_for_model
from edge.trainer import OnDeviceTrainer
from model.dataset import load_names

pytestmark = pytest.mark.slow  # starts TensorFlow, TFF or real processes


@pytest.fixture(scope="module")
def trainer_and_data(
    trained_run: Path, data_dir: Path
) -> tuple[OnDeviceTrainer, np.ndarray, np.ndarray]:
    trainer = OnDeviceTrainer(trained_run / "model")
    ds = load_names(data_dir)
    rows = np.random.default_rng(0).choice(len(ds), 100, replace=False)
    sub = ds.subset(rows)
    ids = trainer.manifest.vocab.encode(list(sub.names))
    return trainer, ids, labels_for_model(sub, trainer.manifest.languages)


def _count_steps(trainer: OnDeviceTrainer, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = trainer.train_step

    def step(x: np.ndarray, y: np.ndarray, w: np.ndarray, lr: float) -> float:
        calls.append(int(w.sum()))
        return real(x, y, w, lr)

    monkeypatch.setattr(trainer, "train_step", step)
    return calls


def test_a_step_cap_stops_mid_epoch_across_epochs(
    trainer_and_data: tuple[OnDeviceTrainer, np.ndarray, np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trainer, ids, labels = trainer_and_data
    start = trainer.weights()
    calls = _count_steps(trainer, monkeypatch)
    # 100 names in batches of 32: 4 batches an epoch (the last holds 4 names).
    losses = trainer.train_epochs(ids, labels, 3, 0.1, np.random.default_rng(1), max_steps=6)
    assert len(calls) == 6 and len(losses) == 2 and all(np.isfinite(losses))
    calls.clear()
    trainer.set_weights(start)
    assert len(trainer.train_epochs(ids, labels, 3, 0.1, np.random.default_rng(1))) == 3
    assert len(calls) == 12 and sum(calls) == 300
    trainer.set_weights(start)


def test_a_step_cap_below_one_is_refused(
    trainer_and_data: tuple[OnDeviceTrainer, np.ndarray, np.ndarray],
) -> None:
    trainer, ids, labels = trainer_and_data
    with pytest.raises(ValueError, match="max_steps must be >= 1"):
        trainer.train_epochs(ids, labels, 1, 0.1, np.random.default_rng(0), max_steps=0)
