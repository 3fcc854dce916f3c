"""Centralized training: what each epoch trains on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.config import TrainConfig
from model.dataset import load_names

pytestmark = pytest.mark.slow  # starts TensorFlow, TFF or real processes


def test_every_epoch_trains_on_a_new_permutation_of_the_training_rows(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keras' fit(shuffle=True) repeats one permutation per call under a global seed: not used."""
    import tensorflow as tf

    from model.train import train_centralized

    epochs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    real_fit = tf.keras.Model.fit

    def fit(self: tf.keras.Model, x: np.ndarray, y: np.ndarray, **kw: object) -> object:
        assert kw.get("shuffle") is False
        epochs.append((np.array(x), np.array(y), np.array(kw["sample_weight"])))
        return real_fit(self, x, y, **kw)

    monkeypatch.setattr(tf.keras.Model, "fit", fit)
    ds = load_names(data_dir)
    small = ds.subset(np.arange(0, len(ds), 10))
    cfg = TrainConfig(epochs=3, patience=3, refit_on_all=False)
    result = train_centralized(small, cfg, {"units": 4, "embed_dim": 4})
    assert len(epochs) == 3
    rows = [sorted(map(tuple, x.tolist())) for x, _, _ in epochs]
    assert rows[0] == rows[1] == rows[2] and len(rows[0]) == len(result.train_rows)
    assert not np.array_equal(epochs[0][0], epochs[1][0])
    assert not np.array_equal(epochs[1][0], epochs[2][0])
    # The class weights travel with their rows: one weight per language in every epoch.
    for _, y, w in epochs:
        assert all(len(set(w[y == label].tolist())) == 1 for label in np.unique(y))


def test_the_shipped_model_is_refit_on_train_and_val_names_never_on_test_names(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Epochs and tau are chosen on the validation names; then a fresh model trains on
    train + val for the chosen number of epochs, and the test names stay unseen."""
    import tensorflow as tf

    from model.train import train_centralized

    seen: list[int] = []
    real_fit = tf.keras.Model.fit

    def fit(self: tf.keras.Model, x: np.ndarray, y: np.ndarray, **kw: object) -> object:
        seen.append(len(y))
        return real_fit(self, x, y, **kw)

    monkeypatch.setattr(tf.keras.Model, "fit", fit)
    ds = load_names(data_dir)
    small = ds.subset(np.arange(0, len(ds), 10))
    result = train_centralized(small, TrainConfig(epochs=2, patience=2), {"units": 4})
    assert np.array_equal(result.fit_rows, np.sort(np.r_[result.train_rows, result.val_rows]))
    assert not {small.names[i] for i in result.fit_rows} & {
        small.names[i] for i in result.test_rows
    }
    assert 1 <= result.best_epoch <= 2
    assert seen == [len(result.train_rows)] * 2 + [len(result.fit_rows)] * result.best_epoch
    assert result.tau in [c["tau"] for c in result.tradeoff]
