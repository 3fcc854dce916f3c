"""Export a trained Keras classifier to the TFLite artifacts a Pi runs.

- ``model_float.tflite``: float32 inference.
- ``model_dynamic.tflite``: dynamic-range quantised weights.
- ``model_int8.tflite``: full-integer int8, calibrated on representative training names.
- ``train.tflite``: signatures ``train``, ``infer``, ``get_weights`` and ``set_weights``, so a Pi
  trains with a TFLite runtime alone (the pattern of TensorFlow's "on-device training" guide).

Every converter is restricted to ``TFLITE_BUILTINS`` (or ``TFLITE_BUILTINS_INT8``): if anything
ever needed a Flex op, the export fails here instead of on a Pi.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.lite.tools import flatbuffer_utils

from model.config import ModelConfig
from model.encoding import Vocab
from model.gru import build_classifier, weighted_cross_entropy
from model.manifest import ModelManifest, WeightSpec, sha256_file, write_atomic

ARTIFACT_FILES = {
    "float": "model_float.tflite",
    "dynamic": "model_dynamic.tflite",
    "int8": "model_int8.tflite",
    "train": "train.tflite",
}
# 2,000 names: with 500, the int8 file of the issue-21 model lost 1.8 points of balanced
# accuracy against float on the 1,809 held-out names; calibrated on 2,000, 0.2 points at most
# (benchmarks/experiments/baseline_accuracy.py).
CALIBRATION_SAMPLES = 2000


def weight_key(i: int) -> str:
    """Signature tensor name of the i-th trainable variable (zero-padded so names sort)."""
    return f"w{i:03d}"


class _TrainModule(tf.Module):
    """The on-device training program: plain SGD on a weighted, builtins-only loss."""

    def __init__(self, model: tf.keras.Model, cfg: ModelConfig) -> None:
        super().__init__()
        self.model = model
        self.cfg = cfg
        b, n = cfg.train_batch, cfg.max_len

        # Signature keys are the Python function names, hence these thin named wrappers.
        def train(x: tf.Tensor, y: tf.Tensor, w: tf.Tensor, lr: tf.Tensor) -> dict:
            return self._train(x, y, w, lr)

        def infer(x: tf.Tensor) -> dict:
            return self._infer(x)

        def get_weights() -> dict:
            return self._get_weights()

        def set_weights(*values: tf.Tensor) -> dict:
            return self._set_weights(*values)

        self.train = tf.function(
            train,
            input_signature=[
                tf.TensorSpec([b, n], tf.int32, name="x"),
                tf.TensorSpec([b], tf.int32, name="y"),
                tf.TensorSpec([b], tf.float32, name="w"),
                tf.TensorSpec([], tf.float32, name="lr"),
            ],
        )
        self.infer = tf.function(infer, input_signature=[tf.TensorSpec([b, n], tf.int32, name="x")])
        self.get_weights = tf.function(get_weights, input_signature=[])
        self.set_weights = tf.function(
            set_weights,
            input_signature=[
                tf.TensorSpec(v.shape, tf.float32, name=weight_key(i))
                for i, v in enumerate(model.trainable_variables)
            ],
        )

    def _train(self, x: tf.Tensor, y: tf.Tensor, w: tf.Tensor, lr: tf.Tensor) -> dict:
        with tf.GradientTape() as tape:
            logits = self.model(x, training=False)
            loss = weighted_cross_entropy(logits, y, w, self.cfg.num_classes)
        grads = tape.gradient(loss, self.model.trainable_variables)
        for var, grad in zip(self.model.trainable_variables, grads, strict=True):
            var.assign_sub(lr * grad)
        return {"loss": loss}

    def _infer(self, x: tf.Tensor) -> dict:
        return {"logits": self.model(x, training=False)}

    def _get_weights(self) -> dict:
        return {weight_key(i): v.read_value() for i, v in enumerate(self.model.trainable_variables)}

    def _set_weights(self, *values: tf.Tensor) -> dict:
        for var, value in zip(self.model.trainable_variables, values, strict=True):
            var.assign(value)
        return {"count": tf.constant(len(values), tf.int32)}


def compact_flatbuffer(data: bytes) -> bytes:
    """Drop what an inference .tflite carries but a Pi never reads; the ops and weights are kept.

    - tensor names (~1 KB per unrolled step): inference code addresses tensors by index, and
      signature maps keep their own names;
    - tensor shape signatures (~8 KB): they only mark dynamic dimensions, and the runtime resizes
      the batch dimension itself (``resize_tensor_input``, not strict);
    - one empty buffer per activation tensor (~5 KB): the converter gives each its own, while
      the schema's buffer 0 is the shared empty sentinel, so they all point there.

    Nothing that runs changes: the parity checks and every test run on the compacted files.
    """
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    if model.buffers[0].data is not None and len(model.buffers[0].data):
        raise ValueError("buffer 0 of this .tflite holds data; it is not a converter output")
    kept, remap = [model.buffers[0]], {0: 0}
    for old, buffer in enumerate(model.buffers):
        if old and buffer.data is not None and len(buffer.data):
            remap[old] = len(kept)
            kept.append(buffer)
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            tensor.name = None
            tensor.shapeSignature = None
            tensor.buffer = remap.get(tensor.buffer, 0)
    for entry in model.metadata or []:
        entry.buffer = remap[entry.buffer]
    model.buffers = kept
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _convert_inference(
    model: tf.keras.Model, kind: str, calibration: Callable[[], Iterator[list[np.ndarray]]]
) -> bytes:
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if kind in ("dynamic", "int8"):
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if kind == "int8":
        conv.representative_dataset = calibration
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_output_type = tf.int8
    return compact_flatbuffer(bytes(conv.convert()))


def convert_train_artifact(model: tf.keras.Model, cfg: ModelConfig) -> bytes:
    """The multi-signature training .tflite (builtins and resource variables only).

    The program is the same classifier rebuilt with the GRUs' hand-written backward pass
    (``build_classifier(cfg, hand_written_backward=True)``), carrying ``model``'s weights: the
    same gradients, in ops a TFLite runtime runs faster (model/gru.py).
    """
    program = build_classifier(cfg, hand_written_backward=True)
    shapes = [tuple(v.shape) for v in model.trainable_variables]
    if [tuple(v.shape) for v in program.trainable_variables] != shapes:
        raise ValueError(f"the model's weights {shapes} do not fit a classifier built from {cfg}")
    program.set_weights(model.get_weights())
    module = _TrainModule(program, cfg)
    fns = [
        module.train.get_concrete_function(),
        module.infer.get_concrete_function(),
        module.get_weights.get_concrete_function(),
        module.set_weights.get_concrete_function(),
    ]
    conv = tf.lite.TFLiteConverter.from_concrete_functions(fns, module)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    conv.experimental_enable_resource_variables = True
    return bytes(conv.convert())


def export_artifacts(
    model: tf.keras.Model,
    cfg: ModelConfig,
    vocab: Vocab,
    languages: tuple[str, ...],
    calibration_ids: np.ndarray,
    out_dir: str | Path,
    version: str = "0",
    kinds: tuple[str, ...] = ("float", "dynamic", "int8", "train"),
) -> ModelManifest:
    """Write the artifacts and their manifest into ``out_dir``; returns the manifest."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(calibration_ids), min(CALIBRATION_SAMPLES, len(calibration_ids)), False)
    samples = calibration_ids[np.sort(pick)]

    def calibration() -> Iterator[list[np.ndarray]]:
        for row in samples:
            yield [row[None, :].astype(np.int32)]

    artifacts = {}
    for kind in kinds:
        data = (
            convert_train_artifact(model, cfg)
            if kind == "train"
            else _convert_inference(model, kind, calibration)
        )
        path = out / ARTIFACT_FILES[kind]
        write_atomic(path, data)
        artifacts[kind] = {"file": path.name, "sha256": sha256_file(path), "bytes": len(data)}
    manifest = ModelManifest(
        languages=languages,
        vocab=vocab,
        model_config=cfg.to_dict(),
        artifacts=artifacts,
        weights=tuple(
            WeightSpec(v.name, tuple(int(d) for d in v.shape)) for v in model.trainable_variables
        ),
        train_batch=cfg.train_batch,
        version=version,
    )
    manifest.save(out)
    return manifest
