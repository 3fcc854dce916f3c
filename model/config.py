"""Typed, frozen configuration for the classifier and its training (nanoGPT-style).

Every run prints and saves these, so a result can always be traced to the settings behind it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

#: Characters per name. 5 of the data set's 18,012 distinct (name, language) pairs are longer
#: (17-20 characters, e.g. "Shirinsky-Shikhmatov") and keep their last 16 (model/encoding.py).
#: Each extra character is 2 more unrolled GRU steps in every export: at 20, the int8 file was
#: 0.35x the float one instead of 0.33x, with the same test accuracy (benchmarks/
#: baseline_accuracy.py: 0.7868 at 20, 0.7837 at 16).
MAX_LEN = 16


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the GRU classifier; everything an export needs to rebuild it."""

    num_classes: int
    vocab_size: int
    max_len: int = MAX_LEN
    embed_dim: int = 64
    units: int = 128
    # Reading the name both ways lets the model use prefixes (Mc-, O'-) and suffixes (-ov, -ez).
    bidirectional: bool = True
    # Dropout acts in centralized Keras training only; on-device steps run without it.
    # Names are short and the small languages have < 100 of them: regularise hard.
    dropout: float = 0.5
    # Drops whole character embeddings (SpatialDropout1D), a cheap augmentation for names.
    embed_dropout: float = 0.2
    # The TFLite `train` signature needs a fixed batch (a dynamic one brings in Flex ops).
    train_batch: int = 32
    # Hashed character 1..ngram_max-grams added to the logits (model/ngram_bag.py); 0: none.
    # 8,192 x 18 classes is 147k weights: BiGRU-128 + bag = 306k parameters with the data's
    # vocabulary, 330k with the public alphabet (<= 400k). 10,240 buckets made the int8 file
    # 420 KB with the public alphabet (over the 400 KB bound) for +0.3 points (issue 21).
    ngram_buckets: int = 8192
    ngram_max: int = 5

    def __post_init__(self) -> None:
        for name in ("num_classes", "vocab_size", "max_len", "embed_dim", "units", "train_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_classes < 2:
            raise ValueError(f"ModelConfig.num_classes must be >= 2, got {self.num_classes}")
        if self.ngram_buckets < 0 or self.ngram_max < 1:
            raise ValueError(
                f"ModelConfig.ngram_buckets must be >= 0 (0: no n-gram bag) and ngram_max >= 1, "
                f"got {self.ngram_buckets} and {self.ngram_max}"
            )
        for name in ("dropout", "embed_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"ModelConfig.{name} must be in [0, 1), got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form for manifests and reports."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """A manifest's config. A manifest written before the n-gram bag has no
        ``ngram_buckets``: that model is the GRU alone (0), not today's default."""
        return cls(**{"ngram_buckets": 0, **d})


@dataclass(frozen=True)
class TrainConfig:
    """Centralized training; the federated settings live in federated/."""

    epochs: int = 20
    batch_size: int = 64
    # Cosine decay from this rate to 0 over ``epochs`` (Adam).
    learning_rate: float = 3e-3
    # Class weights are (1/frequency)**power, normalised to mean 1: 0 favours plain accuracy,
    # 1 favours balanced accuracy. The trade-off: benchmarks/experiments/baseline_accuracy.py.
    # 0: plain training and post-hoc logit adjustment beat class weighting (issue 21).
    class_weight_power: float = 0.0
    test_frac: float = 0.1
    # Early stopping watches a name-disjoint validation slice of the training names.
    val_frac: float = 0.1
    patience: int = 4
    # Post-hoc logit adjustment tau (logits - tau * log prior). Negative: choose it on the
    # validation names: the highest balanced accuracy among the taus whose accuracy is within
    # ``tau_accuracy_budget`` of the best tau's accuracy.
    logit_adjustment: float = -1.0
    tau_accuracy_budget: float = 0.02
    # After choosing the epoch count and tau on the validation names, train again from scratch
    # on training + validation names for that many epochs: the shipped model sees every
    # non-test name (the test names stay unseen).
    refit_on_all: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise ValueError("TrainConfig.epochs, batch_size and patience must be >= 1")
        if self.learning_rate <= 0:
            raise ValueError(f"TrainConfig.learning_rate must be > 0, got {self.learning_rate}")
        if not 0.0 <= self.tau_accuracy_budget < 1.0:
            raise ValueError("TrainConfig.tau_accuracy_budget must be in [0, 1)")
        if self.class_weight_power < 0:
            raise ValueError("TrainConfig.class_weight_power must be >= 0")
        for name in ("test_frac", "val_frac"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"TrainConfig.{name} must be in (0, 1)")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form for reports."""
        return asdict(self)
