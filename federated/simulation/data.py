"""Model and data glue for the TFF simulation: pure TensorFlow, no TFF.

This is the ``*_tf.py`` layer of TFF's simple_fedavg example: what a simulated device holds
(its encoded training names and its local held-out names), the tf.data pipeline it trains on,
and the Keras model it trains. The split order is the fleet's:

1. the centralized, name-disjoint split first (``split_by_name(ds, test_frac, seed)``), so the
   global test split shares no name with any device;
2. the training side dealt to devices by ``model.partition`` (each device keeps its own
   name-disjoint held-out names for on-device evaluation);
3. the vocabulary built from the devices' training names only.

Devices train the way a Pi does through ``train.tflite``: plain cross-entropy, no dropout
(``ModelConfig.dropout`` and ``embed_dropout`` are 0 here), batches reshuffled every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from model.config import MAX_LEN, ModelConfig
from model.dataset import NamesDataset
from model.encoding import Vocab
from model.gru import build_classifier
from model.partition import partition
from model.split import split_by_name


@dataclass(frozen=True)
class ClientData:
    """One simulated device: what it trains on and what it evaluates candidates on."""

    device: int
    train_ids: np.ndarray  # int32 [n, max_len]
    train_labels: np.ndarray  # int32 [n], indices into the data set's language list
    holdout_names: tuple[str, ...]
    holdout_labels: np.ndarray  # int32, same language order as the model's outputs

    @property
    def num_train(self) -> int:
        """Training rows on this device."""
        return len(self.train_labels)


@dataclass(frozen=True)
class SimulationData:
    """Everything the simulation trains and evaluates on, derived from one seed."""

    languages: tuple[str, ...]
    vocab: Vocab
    clients: tuple[ClientData, ...]
    test_names: tuple[str, ...]
    test_labels: np.ndarray
    partition: str
    seed: int
    # The first global model, when a run starts from a given one (``--init-model``).
    start_weights: tuple[np.ndarray, ...] | None = None

    @property
    def train_ids(self) -> np.ndarray:
        """All devices' training ids, stacked (the centralized reference trains on these)."""
        return np.concatenate([c.train_ids for c in self.clients])

    @property
    def train_labels(self) -> np.ndarray:
        """Labels aligned with ``train_ids``."""
        return np.concatenate([c.train_labels for c in self.clients])

    def summary(self) -> dict[str, object]:
        """Sizes for the run report."""
        sizes = [c.num_train for c in self.clients]
        return {
            "partition": self.partition,
            "clients": len(self.clients),
            "train_rows": int(sum(sizes)),
            "train_rows_per_client_min": int(min(sizes)),
            "train_rows_per_client_max": int(max(sizes)),
            "holdout_rows": int(sum(len(c.holdout_labels) for c in self.clients)),
            "test_rows": len(self.test_labels),
            "vocab_size": self.vocab.size,
            "vocab_version": self.vocab.version,
        }


def prepare_data(
    ds: NamesDataset,
    n_clients: int,
    scheme: str,
    seed: int,
    test_frac: float = 0.2,
    holdout_frac: float = 0.2,
    vocab: Vocab | None = None,
) -> SimulationData:
    """Split, partition across ``n_clients`` devices and encode (see module docstring).

    The vocabulary is built from the devices' training names unless one is given (a model the
    run starts from brings its own).
    """
    train_rows, test_rows = split_by_name(ds, test_frac, seed)
    parts = partition(ds, train_rows, n_clients, scheme, seed, holdout_frac=holdout_frac)
    if vocab is None:
        vocab = Vocab.build((ds.names[int(i)] for p in parts for i in p.train), max_len=MAX_LEN)
    clients = tuple(
        ClientData(
            device=p.device,
            train_ids=vocab.encode([ds.names[int(i)] for i in p.train]),
            train_labels=ds.labels[p.train].astype(np.int32),
            holdout_names=tuple(ds.names[int(i)] for i in p.holdout),
            holdout_labels=ds.labels[p.holdout].astype(np.int32),
        )
        for p in parts
    )
    return SimulationData(
        languages=ds.languages,
        vocab=vocab,
        clients=clients,
        test_names=tuple(ds.names[int(i)] for i in test_rows),
        test_labels=ds.labels[test_rows].astype(np.int32),
        partition=scheme,
        seed=seed,
    )


def simulation_model_config(data: SimulationData, units: int, embed_dim: int) -> ModelConfig:
    """The fleet's model: the same architecture as ``pifed train``, without dropout (as on a Pi)."""
    return ModelConfig(
        num_classes=len(data.languages),
        vocab_size=data.vocab.size,
        max_len=data.vocab.max_len,
        units=units,
        embed_dim=embed_dim,
        dropout=0.0,
        embed_dropout=0.0,
    )


def input_spec(max_len: int) -> tuple[tf.TensorSpec, tf.TensorSpec]:
    """Element spec of a device's batches: (ids [b, max_len] int32, labels [b] int32)."""
    return (
        tf.TensorSpec([None, max_len], tf.int32, name="ids"),
        tf.TensorSpec([None], tf.int32, name="labels"),
    )


def client_dataset(
    client: ClientData, epochs: int, batch_size: int, seed: int, max_steps: int | None = None
) -> tf.data.Dataset:
    """A device's local training stream: reshuffled each epoch, short last batch kept.

    ``max_steps`` keeps only the first that many batches (a new random subset each round,
    since the seed changes per round).
    """
    n = client.num_train
    ds = (
        tf.data.Dataset.from_tensor_slices((client.train_ids, client.train_labels))
        .shuffle(n, seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .repeat(epochs)
    )
    return ds if max_steps is None else ds.take(max_steps)


def build_model(cfg: ModelConfig, weights: list[np.ndarray] | None = None) -> tf.keras.Model:
    """The Keras classifier a device trains (``model.gru.build_classifier``), optionally loaded.

    Build a fresh one whenever Keras is used after TFF has traced a model: Keras swaps the
    base class of *every* functional model to its graph-mode (v1) variant when a model is
    built in a graph, as TFF does, and an older instance then fails in ``predict``.
    """
    model = build_classifier(cfg)
    if weights is not None:
        model.set_weights(weights)
    return model


def initial_weights(cfg: ModelConfig, seed: int) -> list[np.ndarray]:
    """Seeded initial weights, so federated and centralized runs start from the same point."""
    tf.keras.utils.set_random_seed(seed)
    model = build_classifier(cfg)
    if model.non_trainable_weights:
        raise ValueError("the simulation expects a model with trainable weights only")
    return [np.asarray(v.numpy()) for v in model.trainable_variables]


def start_weights(data: SimulationData, cfg: ModelConfig, seed: int) -> list[np.ndarray]:
    """A run's first global model: the given one (``--init-model``), else a seeded fresh one."""
    if data.start_weights is not None:
        return [np.array(w, np.float32) for w in data.start_weights]
    return initial_weights(cfg, seed)


def keras_loss() -> tf.keras.losses.Loss:
    """Mean cross-entropy on logits: what ``train.tflite`` computes with all row weights 1."""
    return tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
