"""Host side (needs TensorFlow): tiny TFLite programs that isolate what crashes the `train`
signature of train.tflite under ai-edge-litert on aarch64.

    .venv/bin/python tools/arm64/bisect/make_programs.py OUT_DIR
    PIFED_ARM64_RELEASE=trixie tools/arm64/python tools/arm64/bisect/run_signature.py \
        OUT_DIR/*.tflite

Each program has one signature, converted like model/export.py's train artifact (builtins only,
resource variables on). They differ only in the rank of one input:

  scalar_input   y = x * lr            lr: shape []   (rank 0, like train's `lr`)
  vector1_input  y = x * lr            lr: shape [1]
  no_extra_input y = x * 2
  sgd_scalar_lr  v -= lr * v; read v   lr: shape []   (ASSIGN_VARIABLE / READ_VARIABLE)
  sgd_vector1_lr the same with lr: shape [1]
"""

from __future__ import annotations

import sys
from pathlib import Path

import tensorflow as tf


class _Programs(tf.Module):
    def __init__(self) -> None:
        super().__init__()
        self.v = tf.Variable(tf.ones([4]))

    @tf.function(
        input_signature=[
            tf.TensorSpec([4], tf.float32, name="x"),
            tf.TensorSpec([], tf.float32, name="lr"),
        ]
    )
    def scalar_input(self, x: tf.Tensor, lr: tf.Tensor) -> dict:
        return {"y": x * lr}

    @tf.function(
        input_signature=[
            tf.TensorSpec([4], tf.float32, name="x"),
            tf.TensorSpec([1], tf.float32, name="lr"),
        ]
    )
    def vector1_input(self, x: tf.Tensor, lr: tf.Tensor) -> dict:
        return {"y": x * lr}

    @tf.function(input_signature=[tf.TensorSpec([4], tf.float32, name="x")])
    def no_extra_input(self, x: tf.Tensor) -> dict:
        return {"y": x * 2.0}

    @tf.function(input_signature=[tf.TensorSpec([], tf.float32, name="lr")])
    def sgd_scalar_lr(self, lr: tf.Tensor) -> dict:
        self.v.assign_sub(lr * self.v)
        return {"y": self.v.read_value()}

    @tf.function(input_signature=[tf.TensorSpec([1], tf.float32, name="lr")])
    def sgd_vector1_lr(self, lr: tf.Tensor) -> dict:
        self.v.assign_sub(lr * self.v)
        return {"y": self.v.read_value()}


NAMES = ("scalar_input", "vector1_input", "no_extra_input", "sgd_scalar_lr", "sgd_vector1_lr")


def main(out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    module = _Programs()
    for name in NAMES:
        fn = getattr(module, name).get_concrete_function()
        conv = tf.lite.TFLiteConverter.from_concrete_functions([fn], module)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        conv.experimental_enable_resource_variables = True
        (out / f"{name}.tflite").write_bytes(conv.convert())
        print(out / f"{name}.tflite")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
