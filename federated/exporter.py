"""Turn an aggregated weight vector into the TFLite files a Pi evaluates and deploys.

The coordinator holds TensorFlow (the Pis do not): it rebuilds the Keras model from the
manifest's config, loads the flat FedAvg weights and exports the inference artifacts with the
same builtins-only converter as ``pifed train``. It has no names to calibrate int8 with (names
never leave a Pi), so int8 calibration uses synthetic, name-shaped strings from the vocabulary.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from model.config import MAX_LEN, ModelConfig
from model.encoding import Vocab, public_alphabet
from model.manifest import MANIFEST_NAME, ModelManifest, unflatten_weights

SYNTHETIC_NAMES = 500


def synthetic_calibration(vocab: Vocab, seed: int = 0) -> np.ndarray:
    """Encoded pseudo-names (capitalised, 3-12 letters) for int8 calibration without data."""
    rng = np.random.default_rng(seed)
    lower = [c for c in vocab.chars if c.islower()] or list(vocab.chars)
    upper = [c for c in vocab.chars if c.isupper()] or lower
    names = []
    for _ in range(SYNTHETIC_NAMES):
        n = int(rng.integers(3, 13))
        names.append(str(rng.choice(upper)) + "".join(rng.choice(lower, n - 1)))
    return vocab.encode(names)


def init_model(
    out_dir: str | Path, languages: tuple[str, ...], seed: int = 0, **overrides: object
) -> ModelManifest:
    """A freshly initialised model (public alphabet) with all four artifacts: version 0 of a
    fleet that learns from scratch."""
    import tensorflow as tf

    from model.export import export_artifacts
    from model.gru import build_classifier

    tf.keras.utils.set_random_seed(seed)
    vocab = Vocab(public_alphabet(), MAX_LEN)
    cfg = ModelConfig(num_classes=len(languages), vocab_size=vocab.size, **overrides)  # type: ignore[arg-type]
    model = build_classifier(cfg)
    return export_artifacts(
        model, cfg, vocab, languages, synthetic_calibration(vocab, seed), out_dir, version="0"
    )


class CandidateExporter:
    """Exports candidates of one architecture (built once, reused every round)."""

    def __init__(self, template: ModelManifest) -> None:
        import tensorflow as tf

        from model.gru import build_classifier

        self.template = template
        self.cfg = ModelConfig(**template.model_config)
        self.model = build_classifier(self.cfg)
        if len(self.model.trainable_variables) != len(template.weights):
            raise ValueError("manifest weights do not match the model architecture")
        self._tf = tf
        self._calibration = synthetic_calibration(template.vocab)

    def export(self, flat: np.ndarray, version: int, kinds: tuple[str, ...]) -> dict[str, bytes]:
        """{file name: bytes} for the manifest and the ``kinds`` artifacts of these weights."""
        from model.export import export_artifacts

        for var, value in zip(
            self.model.trainable_variables,
            unflatten_weights(self.template.weights, flat),
            strict=True,
        ):
            var.assign(value)
        with tempfile.TemporaryDirectory() as tmp:
            export_artifacts(
                self.model,
                self.cfg,
                self.template.vocab,
                self.template.languages,
                self._calibration,
                tmp,
                version=str(version),
                kinds=kinds,
            )
            return {
                p.name: p.read_bytes()
                for p in Path(tmp).iterdir()
                if p.suffix == ".tflite" or p.name == MANIFEST_NAME
            }
