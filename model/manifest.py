"""The manifest that travels with every exported model: vocabulary, labels, shapes and hashes.

A ``.tflite`` file alone cannot be evaluated: the Pi also needs the exact character vocabulary
and language list it was trained with. ``manifest.json`` sits beside the artifacts and records
them with each artifact's sha256, so a mismatched or corrupted file is refused before it runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model.encoding import Vocab, VocabError

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
ARTIFACT_KINDS = ("float", "dynamic", "int8", "train")


class ManifestError(ValueError):
    """A manifest is missing, malformed, or does not describe the file asked for."""


class ArtifactHashMismatch(ManifestError):
    """An artifact's bytes differ from the sha256 its manifest records."""


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temp file and rename, so a crash never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class WeightSpec:
    """One trainable tensor, in the order the train artifact's get/set signatures use."""

    name: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        """Number of scalars."""
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class ModelManifest:
    """Everything a Pi needs to run the artifacts in one directory."""

    languages: tuple[str, ...]
    vocab: Vocab
    model_config: dict[str, Any]
    artifacts: dict[str, dict[str, Any]]  # kind -> {"file", "sha256", "bytes"}
    weights: tuple[WeightSpec, ...]
    train_batch: int
    version: str = "0"

    @property
    def num_params(self) -> int:
        """Length of the flat weight vector that federated rounds exchange."""
        return sum(w.size for w in self.weights)

    def to_json(self) -> str:
        """Stable JSON text."""
        return json.dumps(
            {
                "format": MANIFEST_FORMAT,
                "version": self.version,
                "languages": list(self.languages),
                "vocab": json.loads(self.vocab.to_json()),
                "vocab_version": self.vocab.version,
                "model_config": self.model_config,
                "artifacts": self.artifacts,
                "weights": [{"name": w.name, "shape": list(w.shape)} for w in self.weights],
                "train_batch": self.train_batch,
            },
            indent=2,
            ensure_ascii=False,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str, where: str = "manifest") -> ModelManifest:
        """Parse and validate; raises ManifestError naming what is wrong."""
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise ManifestError(f"{where}: not valid JSON ({e}); re-export the model") from e
        fmt = obj.get("format") if isinstance(obj, dict) else None
        if fmt != MANIFEST_FORMAT:
            raise ManifestError(
                f"{where}: unknown manifest format {fmt!r} (this pifed reads "
                f"{MANIFEST_FORMAT}); re-export the model with this pifed"
            )
        try:
            vocab = Vocab.from_json(json.dumps(obj["vocab"]))
            if obj.get("vocab_version") != vocab.version:
                raise ManifestError(f"{where}: vocabulary hash does not match its contents")
            return cls(
                languages=tuple(obj["languages"]),
                vocab=vocab,
                model_config=dict(obj["model_config"]),
                artifacts={k: dict(v) for k, v in obj["artifacts"].items()},
                weights=tuple(WeightSpec(w["name"], tuple(w["shape"])) for w in obj["weights"]),
                train_batch=int(obj["train_batch"]),
                version=str(obj.get("version", "0")),
            )
        except (KeyError, TypeError, ValueError, VocabError) as e:
            if isinstance(e, ManifestError):
                raise
            raise ManifestError(f"{where}: malformed manifest ({e!r}); re-export the model") from e

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``manifest.json`` atomically into ``directory``."""
        path = Path(directory) / MANIFEST_NAME
        write_atomic(path, self.to_json().encode())
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> ModelManifest:
        """Read ``manifest.json`` from ``directory``."""
        path = Path(directory) / MANIFEST_NAME
        if not path.is_file():
            raise ManifestError(
                f"no {MANIFEST_NAME} in {directory}: a .tflite needs the manifest exported beside "
                "it (vocabulary and languages); keep the model directory together"
            )
        return cls.from_json(path.read_text(encoding="utf-8"), where=str(path))

    def artifact_path(self, directory: str | os.PathLike[str], kind: str) -> Path:
        """Path of one artifact, after checking its sha256 against the manifest."""
        if kind not in self.artifacts:
            raise ManifestError(
                f"the manifest in {directory} has no {kind!r} artifact "
                f"(it has {', '.join(sorted(self.artifacts))})"
            )
        path = Path(directory) / self.artifacts[kind]["file"]
        self.verify(path, kind)
        return path

    def verify(self, path: Path, kind: str) -> None:
        """Raise ArtifactHashMismatch unless ``path`` has the recorded sha256."""
        if not path.is_file():
            raise ManifestError(f"artifact {path} is missing; re-export or re-download the model")
        actual = sha256_file(path)
        if actual != self.artifacts[kind]["sha256"]:
            raise ArtifactHashMismatch(
                f"{path}: sha256 {actual[:12]}… does not match the manifest's "
                f"{self.artifacts[kind]['sha256'][:12]}…; the file is corrupted or from another "
                "export, re-export the model"
            )

    def kind_of(self, path: Path) -> str:
        """Which artifact kind a file in this manifest's directory is."""
        for kind, info in self.artifacts.items():
            if info["file"] == path.name:
                return kind
        raise ManifestError(f"{path.name} is not listed in the manifest beside it")


class WeightShapeError(ManifestError):
    """A weight vector or tensor list does not match the model's shapes."""


def flatten_weights(specs: tuple[WeightSpec, ...], tensors: list[np.ndarray]) -> np.ndarray:
    """One float32 vector in manifest order; the unit federated rounds exchange."""
    if len(tensors) != len(specs):
        raise WeightShapeError(f"expected {len(specs)} weight tensors, got {len(tensors)}")
    for spec, t in zip(specs, tensors, strict=True):
        if tuple(t.shape) != spec.shape:
            raise WeightShapeError(f"weight {spec.name}: shape {t.shape} != expected {spec.shape}")
    return np.concatenate([np.asarray(t, np.float32).ravel() for t in tensors])


def unflatten_weights(specs: tuple[WeightSpec, ...], flat: np.ndarray) -> list[np.ndarray]:
    """Inverse of ``flatten_weights``; rejects a vector of the wrong length or dtype."""
    total = sum(s.size for s in specs)
    if flat.ndim != 1 or flat.shape[0] != total:
        raise WeightShapeError(
            f"weight vector has shape {flat.shape}, expected ({total},) for this model"
        )
    if flat.dtype != np.float32:
        raise WeightShapeError(f"weight vector dtype {flat.dtype}, expected float32")
    out, offset = [], 0
    for s in specs:
        out.append(flat[offset : offset + s.size].reshape(s.shape))
        offset += s.size
    return out
