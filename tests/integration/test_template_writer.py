"""Candidates written from the template map against the TensorFlow converter's, same weights.

Float and dynamic files must be byte-identical to the converter's (then every output is too); the
logits are also compared on the whole test split through a real TFLite interpreter, for random
weights and for a model trained by `pifed train`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge.runtime import Classifier
from edge.trainer import OnDeviceTrainer
from federated.exporter import CandidateExporter, _Converter
from model.dataset import NamesDataset, load_names
from model.manifest import MANIFEST_NAME, ModelManifest
from model.tflite_template import MAP_FILE, MAP_KIND, TemplateMap

pytestmark = pytest.mark.slow  # starts TensorFlow

KINDS = ("float", "dynamic")


def _folder(files: dict[str, bytes], where: Path) -> Path:
    where.mkdir(parents=True)
    for name, data in files.items():
        (where / name).write_bytes(data)
    return where


def _same_as_converter(model_dir: Path, flat: np.ndarray, ids: np.ndarray, tmp: Path) -> None:
    template = ModelManifest.load(model_dir)
    direct = CandidateExporter(template, model_dir)
    assert direct.writer is not None, direct.fallback_reason
    written = direct.export(flat, 7, KINDS)
    converted = CandidateExporter(template).export(flat, 7, KINDS)  # no folder: the converter
    assert sorted(written) == sorted(converted)
    for name in written:
        assert written[name] == converted[name], f"{name} differs from the converter's"
    a, b = _folder(written, tmp / "written"), _folder(converted, tmp / "converted")
    for kind in KINDS:
        la = Classifier.from_dir(a, kind).logits(ids)
        lb = Classifier.from_dir(b, kind).logits(ids)
        np.testing.assert_allclose(la, lb, rtol=0, atol=1e-6)
        assert np.array_equal(la.argmax(1), lb.argmax(1))


def test_random_weights_give_the_converters_files(
    fleet_model: Path, ds: NamesDataset, tmp_path: Path
) -> None:
    template = ModelManifest.load(fleet_model)
    assert MAP_KIND in template.artifacts  # init_model derives and lists the map
    ids = template.vocab.encode(list(ds.names))
    for seed in (1, 2):
        flat = np.random.default_rng(seed).normal(0, 0.5, template.num_params).astype(np.float32)
        _same_as_converter(fleet_model, flat, ids, tmp_path / str(seed))


def test_a_trained_model_gives_the_converters_files(trained_run: Path, tmp_path: Path) -> None:
    from federated.template_map import add_template_map

    # `pifed train` derives the map itself, and hands its Keras model back unchanged (the
    # Keras figures it reports after the map agree with the float file's).
    assert MAP_KIND in ModelManifest.load(trained_run / "model").artifacts
    report = json.loads((trained_run / "metrics.json").read_text())
    assert report["keras"]["accuracy"] == pytest.approx(
        report["tflite"]["float"]["accuracy"], abs=0.005
    )
    folder = tmp_path / "model"
    shutil.copytree(trained_run / "model", folder)
    add_template_map(folder)
    flat = OnDeviceTrainer(folder).flat_weights()
    test = load_names(trained_run / "test_names")
    ids = ModelManifest.load(folder).vocab.encode(list(test.names))
    assert len(ids) > 1000
    _same_as_converter(folder, flat, ids, tmp_path / "cmp")
    # One FedAvg-like step away from the trained weights, too.
    step = flat + np.random.default_rng(0).normal(0, 0.01, flat.size).astype(np.float32)
    _same_as_converter(folder, step, ids, tmp_path / "step")


def test_int8_goes_through_the_converter_with_the_same_manifest(
    fleet_model: Path, tmp_path: Path
) -> None:
    template = ModelManifest.load(fleet_model)
    flat = OnDeviceTrainer(fleet_model).flat_weights()
    files = CandidateExporter(template, fleet_model).export(flat, 3, ("float", "int8"))
    conv = _Converter(template).export(flat, 3, ("int8",))
    assert sorted(files) == [MANIFEST_NAME, "model_float.tflite", "model_int8.tflite"]
    manifest = ModelManifest.from_json(files[MANIFEST_NAME].decode())
    assert manifest.version == "3" and sorted(manifest.artifacts) == ["float", "int8"]
    folder = _folder(files, tmp_path / "c")
    for kind in ("float", "int8"):
        manifest.artifact_path(folder, kind)  # sha256 as listed
    assert len(files["model_int8.tflite"]) == len(conv["model_int8.tflite"])


def test_a_folder_without_a_verified_map_falls_back_to_the_converter(
    fleet_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bare = tmp_path / "bare"
    shutil.copytree(fleet_model, bare)
    (bare / MAP_FILE).unlink()
    manifest = ModelManifest.load(bare)
    arts = {k: v for k, v in manifest.artifacts.items() if k != MAP_KIND}
    ModelManifest(**{**manifest.__dict__, "artifacts": arts}).save(bare)
    exporter = CandidateExporter(ModelManifest.load(bare), bare)
    assert exporter.writer is None
    assert "python -m federated.template_map" in exporter.fallback_reason
    assert "TFLite converter" in caplog.text

    tampered = tmp_path / "tampered"
    shutil.copytree(fleet_model, tampered)
    data = bytearray((tampered / MAP_FILE).read_bytes())
    data[-100] ^= 1
    (tampered / MAP_FILE).write_bytes(bytes(data))
    exporter = CandidateExporter(ModelManifest.load(tampered), tampered)
    assert exporter.writer is None and "sha256" in exporter.fallback_reason
    flat = OnDeviceTrainer(fleet_model).flat_weights()
    assert "model_float.tflite" in exporter.export(flat, 2, ("float",))  # via TensorFlow


def test_the_stored_map_round_trips(fleet_model: Path) -> None:
    data = (fleet_model / MAP_FILE).read_bytes()
    tmap = TemplateMap.from_bytes(data)
    assert sorted(tmap.kinds) == sorted(KINDS)
    assert TemplateMap.from_bytes(tmap.to_bytes()).to_bytes() == tmap.to_bytes()
