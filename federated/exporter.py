"""Turn an aggregated weight vector into the TFLite files a Pi evaluates and deploys.

Two ways, one interface (:class:`CandidateExporter`):

- **Template map** (no TensorFlow): a model folder made with TensorFlow carries
  ``tflite_map.npz``, a verified map from the flat weights to the float and dynamic files'
  bytes (federated/template_map.py); each round's files are written with numpy alone
  (model/tflite_template.py), byte-identical to the converter's.
- **Converter** (TensorFlow): the Keras model is rebuilt from the manifest's config, loaded with
  the FedAvg weights and exported with the same builtins-only converter as ``pifed train``. int8
  always takes this path: it needs calibration, and with no names on the coordinator (names
  never leave a Pi) it calibrates on synthetic, name-shaped strings from the vocabulary.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from model.config import MAX_LEN, ModelConfig
from model.encoding import Vocab, public_alphabet
from model.manifest import MANIFEST_NAME, ManifestError, ModelManifest, unflatten_weights
from model.tflite_template import MAP_FILE, MAP_KIND, TemplateMap, TemplateMapError

log = logging.getLogger("pifed.exporter")
# The artifact file of each kind (model/export.py's names; that module needs TensorFlow).
ARTIFACT_FILES = {
    "float": "model_float.tflite",
    "dynamic": "model_dynamic.tflite",
    "int8": "model_int8.tflite",
}

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
    manifest = export_artifacts(
        model, cfg, vocab, languages, synthetic_calibration(vocab, seed), out_dir, version="0"
    )
    return with_template_map(out_dir, model) or manifest


def with_template_map(model_dir: str | Path, model: Any = None) -> ModelManifest | None:
    """Add the verified template map to a model folder (TensorFlow); None, with a warning
    saying the coordinator keeps the converter, when this architecture cannot be mapped."""
    from federated.template_map import add_template_map

    try:
        return add_template_map(model_dir, model)
    except TemplateMapError as e:
        log.warning("no template map for %s (candidates will need TensorFlow): %s", model_dir, e)
        return None


class ExportError(RuntimeError):
    """A candidate cannot be exported on this coordinator (and what to do about it)."""


def candidate_manifest(template: ModelManifest, version: int, files: dict[str, bytes]) -> bytes:
    """``manifest.json`` of a candidate: the template's, with this version and these artifacts
    (the same bytes ``export_artifacts`` writes for them)."""
    artifacts = {
        kind: {"file": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        for kind, name, data in ((_kind_of(n), n, d) for n, d in files.items())
    }
    manifest = dataclasses.replace(template, artifacts=artifacts, version=str(version))
    return manifest.to_json().encode()


def _kind_of(file_name: str) -> str:
    return file_name.removeprefix("model_").removesuffix(".tflite")


class TemplateWriter:
    """Writes float and dynamic candidates straight into the template's verified skeletons
    (numpy and flatbuffers only; see model/tflite_template.py)."""

    def __init__(self, template: ModelManifest, tmap: TemplateMap) -> None:
        if tmap.num_params != template.num_params:
            raise TemplateMapError(
                f"the template map is for {tmap.num_params} weights, the manifest has "
                f"{template.num_params}; re-derive it (python -m federated.template_map DIR)"
            )
        self.template = template
        self.map = tmap

    @classmethod
    def from_folder(cls, template: ModelManifest, model_dir: str | Path) -> TemplateWriter:
        """The writer of a model folder whose manifest lists a map (sha256 checked); raises
        TemplateMapError (or ManifestError) saying why not."""
        if MAP_KIND not in template.artifacts:
            raise TemplateMapError(
                f"{model_dir} has no {MAP_FILE}: add one with `python -m federated.template_map "
                f"{model_dir}` on a machine with TensorFlow (a first `pifed server` start "
                "makes one)"
            )
        return cls(template, TemplateMap.load(template.artifact_path(model_dir, MAP_KIND)))

    @property
    def kinds(self) -> tuple[str, ...]:
        """The artifact kinds this writer makes."""
        return tuple(self.map.kinds)

    def export(self, flat: np.ndarray, version: int) -> dict[str, bytes]:
        """{file name: bytes} of every kind this writer makes (no manifest)."""
        unflatten_weights(self.template.weights, flat)  # WeightShapeError unless it fits
        return {ARTIFACT_FILES[k]: km.write(flat) for k, km in self.map.kinds.items()}


class _Converter:
    """The TFLite converter path: the Keras model rebuilt once and re-exported every round."""

    def __init__(self, template: ModelManifest) -> None:
        try:
            import tensorflow  # noqa: F401
        except ImportError as e:
            raise ExportError(
                "this coordinator has no TensorFlow, and its model folder has no verified "
                "template map for float/dynamic candidates, and int8 candidates always need the "
                "converter's calibration. Fix: deploy float or dynamic (`--deploy-kind dynamic`) "
                "from a folder with tflite_map.npz (`python -m federated.template_map DIR` on a "
                'machine with TensorFlow), or install the full set (`pip install ".[full]"`)'
            ) from e
        from model.gru import build_classifier

        self.template = template
        self.cfg = ModelConfig.from_dict(template.model_config)
        self.model = build_classifier(self.cfg)
        if len(self.model.trainable_variables) != len(template.weights):
            raise ValueError("manifest weights do not match the model architecture")
        self._calibration = synthetic_calibration(template.vocab)

    def export(self, flat: np.ndarray, version: int, kinds: tuple[str, ...]) -> dict[str, bytes]:
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
            return {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.suffix == ".tflite"}


class CandidateExporter:
    """Exports candidates of one architecture. With ``model_dir`` holding a verified template
    map, float and dynamic files are written directly (no TensorFlow); anything else (int8, or
    a folder without a map) goes through the converter, loaded on first use."""

    def __init__(self, template: ModelManifest, model_dir: str | Path | None = None) -> None:
        self.template = template
        self.writer: TemplateWriter | None = None
        self.fallback_reason = "no model folder given"
        if model_dir is not None:
            try:
                self.writer = TemplateWriter.from_folder(template, model_dir)
            except (TemplateMapError, ManifestError) as e:
                self.fallback_reason = str(e)
                log.warning("candidates go through the TFLite converter (TensorFlow): %s", e)
        self._converter: _Converter | None = None

    def export(self, flat: np.ndarray, version: int, kinds: tuple[str, ...]) -> dict[str, bytes]:
        """{file name: bytes} for the manifest and the ``kinds`` artifacts of these weights."""
        direct = tuple(k for k in kinds if self.writer is not None and k in self.writer.kinds)
        rest = tuple(k for k in kinds if k not in direct)
        files: dict[str, bytes] = {}
        if direct:
            assert self.writer is not None
            made = self.writer.export(flat, version)
            files.update({ARTIFACT_FILES[k]: made[ARTIFACT_FILES[k]] for k in direct})
        if rest:
            if self._converter is None:
                self._converter = _Converter(self.template)
            files.update(self._converter.export(flat, version, rest))
        return {**files, MANIFEST_NAME: candidate_manifest(self.template, version, files)}


def main(argv: list[str] | None = None) -> int:
    """``python -m federated.exporter DIR``: a fresh version-0 model folder with its template
    map, made where TensorFlow is, for a coordinator without it (``pifed server --model DIR``)."""
    import argparse

    from model.dataset import load_names, resolve_data_dir

    p = argparse.ArgumentParser(prog="python -m federated.exporter", description=main.__doc__)
    p.add_argument("out", metavar="DIR")
    p.add_argument("--data", help="names folder whose languages the model has ($PIFED_DATA)")
    p.add_argument("--units", type=int, default=128, help="GRU units")
    p.add_argument("--embed-dim", type=int, default=64, help="embedding size")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    languages = load_names(resolve_data_dir(args.data)).languages
    manifest = init_model(
        args.out, languages, seed=args.seed, units=args.units, embed_dim=args.embed_dim
    )
    mapped = "with" if MAP_KIND in manifest.artifacts else "WITHOUT (see the warning)"
    print(f"wrote a version-0 model into {args.out}, {mapped} its template map")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
