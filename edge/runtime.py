"""Load and run pifed's TFLite inference artifacts with a TFLite runtime, never TensorFlow.

The edge set installs two runtimes on Python 3.11 and uses each for what it does well:

- **inference** on ai-edge-litert (tflite-runtime's successor): its XNNPACK runs the int8
  model, which tflite-runtime 2.14 runs op by op (7x slower for one name);
- **training** (``train.tflite``'s ``train`` signature) on tflite-runtime 2.14 where it exists
  (Python 3.11), else on ai-edge-litert. ai-edge-litert 1.4 to 2.3 segfaulted on aarch64 when a
  signature had a rank-0 input; ``edge.trainer`` feeds the rate as shape [1], and both
  runtimes then train to the same step (tools/arm64/README.md).

Either runtime alone also does both (the other purpose falls back to it), and
``PIFED_TFLITE_RUNTIME=tflite_runtime|ai_edge_litert`` insists on one for both purposes, so the
two can be compared on the same artifacts. BUILD_NOTES.md has the measurements.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from model.encoding import Vocab
from model.manifest import ModelManifest

# Import name of each runtime's package.
RUNTIMES = ("tflite_runtime", "ai_edge_litert")
RUNTIME_ENV = "PIFED_TFLITE_RUNTIME"
# What an interpreter is for -> the runtimes to try, in order of preference.
PREFERENCE = {
    "inference": ("ai_edge_litert", "tflite_runtime"),
    "training": ("tflite_runtime", "ai_edge_litert"),
}


class RuntimeMissing(ImportError):
    """No usable TFLite runtime: none installed, or not the one PIFED_TFLITE_RUNTIME names."""


class InputShapeError(ValueError):
    """Ids passed to a model have the wrong rank, length or dtype."""


def _import_interpreter(runtime: str) -> Any:
    if runtime == "ai_edge_litert":
        from ai_edge_litert.interpreter import Interpreter
    else:
        from tflite_runtime.interpreter import Interpreter
    return Interpreter


def interpreter_class(purpose: str = "inference") -> Any:
    """The Interpreter class of the preferred installed runtime for ``purpose`` (``PREFERENCE``).

    ``PIFED_TFLITE_RUNTIME=ai_edge_litert|tflite_runtime`` insists on one: it is an error, not
    a silent fallback, when that one is missing, so a benchmark never measures the wrong one.
    """
    if purpose not in PREFERENCE:
        raise ValueError(f"purpose must be one of {', '.join(PREFERENCE)}, got {purpose!r}")
    wanted = os.environ.get(RUNTIME_ENV, "").strip()
    if wanted and wanted not in RUNTIMES:
        raise RuntimeMissing(
            f"{RUNTIME_ENV}={wanted!r} is not a TFLite runtime: use one of {', '.join(RUNTIMES)} "
            "or unset it"
        )
    errors = []
    for runtime in (wanted,) if wanted else PREFERENCE[purpose]:
        try:
            return _import_interpreter(runtime)
        except ImportError as e:
            errors.append(f"{runtime}: {e}")
    fix = (
        f"install it, or unset {RUNTIME_ENV}"
        if wanted
        else "install the edge set with `pip install 'pifed[edge]'` (ai-edge-litert, and "
        "tflite-runtime on Python 3.11)"
    )
    raise RuntimeMissing(f"no TFLite runtime ({'; '.join(errors)}): {fix}")


def runtime_name(purpose: str = "inference") -> str:
    """Which runtime module provides the interpreter for ``purpose``, for reports."""
    return str(interpreter_class(purpose).__module__).split(".")[0]


def make_interpreter(path: Path, num_threads: int | None = None, purpose: str = "inference") -> Any:
    """An interpreter for ``path`` on ``purpose``'s runtime (XNNPACK on by default in both)."""
    return interpreter_class(purpose)(model_path=str(path), num_threads=num_threads)


def check_ids(ids: np.ndarray, max_len: int) -> np.ndarray:
    """Validate encoded names before they reach an interpreter."""
    if not isinstance(ids, np.ndarray) or ids.ndim != 2 or ids.shape[1] != max_len:
        shape = getattr(ids, "shape", type(ids).__name__)
        raise InputShapeError(f"ids must be an array of shape (n, {max_len}), got {shape}")
    if ids.dtype != np.int32:
        raise InputShapeError(f"ids must be int32, got {ids.dtype}; encode names with Vocab.encode")
    return ids


class Classifier:
    """One inference artifact with its manifest: names in, language probabilities out."""

    def __init__(self, path: str | os.PathLike[str], num_threads: int | None = None) -> None:
        self.path = Path(path)
        self.manifest = ModelManifest.load(self.path.parent)
        self.kind = self.manifest.kind_of(self.path)
        self.manifest.verify(self.path, self.kind)
        self._interp = make_interpreter(self.path, num_threads)
        self._in = self._interp.get_input_details()[0]
        self._out = self._interp.get_output_details()[0]
        self._batch = -1

    @classmethod
    def from_dir(
        cls, directory: str | os.PathLike[str], kind: str = "float", num_threads: int | None = None
    ) -> Classifier:
        """Load the ``kind`` artifact (float, dynamic or int8) of a model directory."""
        manifest = ModelManifest.load(directory)
        return cls(manifest.artifact_path(directory, kind), num_threads)

    @property
    def vocab(self) -> Vocab:
        """The vocabulary the model was trained with."""
        return self.manifest.vocab

    @property
    def languages(self) -> tuple[str, ...]:
        """Output classes, in logit order."""
        return self.manifest.languages

    def _resize(self, batch: int) -> None:
        if batch != self._batch:
            self._interp.resize_tensor_input(self._in["index"], [batch, self.vocab.max_len])
            self._interp.allocate_tensors()
            self._out = self._interp.get_output_details()[0]
            self._batch = batch

    def logits(self, ids: np.ndarray, batch: int = 256) -> np.ndarray:
        """float32 logits [n, classes]; int8 outputs are dequantised with their scale."""
        check_ids(ids, self.vocab.max_len)
        out = np.empty((len(ids), len(self.languages)), dtype=np.float32)
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            self._resize(len(chunk))
            self._interp.set_tensor(self._in["index"], chunk)
            self._interp.invoke()
            raw = self._interp.get_tensor(self._out["index"])
            scale, zero = self._out["quantization"]
            if raw.dtype != np.float32:
                raw = (raw.astype(np.float32) - zero) * scale
            out[start : start + len(chunk)] = raw
        return out

    def predict(self, names: list[str], top: int = 3) -> list[list[tuple[str, float]]]:
        """Top-``top`` (language, probability) pairs per name."""
        logits = self.logits(self.vocab.encode(names))
        z = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        order = np.argsort(-probs, axis=1)[:, :top]
        return [
            [(self.languages[j], float(p[j])) for j in row]
            for p, row in zip(probs, order, strict=True)
        ]
