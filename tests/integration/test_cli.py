"""The `pifed` commands as a user runs them: real processes, real artifacts, real data."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from tests_support import run_pifed

pytestmark = pytest.mark.slow  # starts TensorFlow, TFF or real processes


def test_train_writes_every_artifact_and_float_tflite_agrees_with_keras(trained_run: Path) -> None:
    metrics = json.loads((trained_run / "metrics.json").read_text())
    model_dir = trained_run / "model"
    for name in (
        "manifest.json",
        "keras_model.keras",
        "model_float.tflite",
        "model_dynamic.tflite",
        "model_int8.tflite",
        "train.tflite",
    ):
        assert (model_dir / name).is_file(), name
    assert (trained_run / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert metrics["tflite"]["float"]["argmax_agreement"] >= 0.999
    assert metrics["tflite"]["float"]["max_abs_logit_diff"] < 1e-3
    assert metrics["data"]["test"] > 1500  # 10% of the 18,012 distinct pairs held out
    adj = metrics["logit_adjustment"]  # the folded-in choice, so the curve can be rebuilt
    assert len(adj["log_prior"]) == len(metrics["data"]["languages"])
    assert adj["tau"] in [c["tau"] for c in adj["validation_curve"]]


def test_evaluate_json_prints_exactly_one_object(trained_run: Path) -> None:
    proc = run_pifed(
        "evaluate",
        "--model",
        str(trained_run / "model" / "model_int8.tflite"),
        "--data",
        str(trained_run / "test_names"),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)  # the whole of stdout is one JSON document
    assert {"accuracy", "balanced_accuracy", "macro_f1", "n"} <= set(obj)
    assert 0 < obj["balanced_accuracy"] <= obj["n"]


def test_predict_prints_top3_for_each_name(trained_run: Path) -> None:
    proc = run_pifed(
        "predict",
        "--model",
        str(trained_run / "model" / "model_float.tflite"),
        "--json",
        "Nakamura",
        "Ivanov",
    )
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert set(obj) == {"Nakamura", "Ivanov"}
    for ranked in obj.values():
        assert len(ranked) == 3
        probs = [r["p"] for r in ranked]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
    plain = run_pifed(
        "predict", "--model", str(trained_run / "model" / "model_float.tflite"), "Ivanov"
    )
    assert plain.stdout.splitlines()[0] == "Ivanov" and "%" in plain.stdout


def test_a_tampered_artifact_is_refused_before_it_runs(trained_run: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(trained_run / "model", copy)
    path = copy / "model_float.tflite"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    proc = run_pifed("predict", "--model", str(path), "Ivanov")
    assert proc.returncode == 2
    assert "sha256" in proc.stderr and "re-export" in proc.stderr


def test_bad_data_gets_a_clear_error_and_exit_2(tmp_path: Path) -> None:
    proc = run_pifed("data", "info", "--data", str(tmp_path / "missing"))
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and "--data" in proc.stderr
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "A.txt").write_bytes(b"Abe\n")
    (tmp_path / "bin" / "B.txt").write_bytes(b"\xff\xfe\x00garbage")
    proc = run_pifed("data", "info", "--data", str(tmp_path / "bin"))
    assert proc.returncode == 2 and "B.txt" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_manifest_names_the_fix(tmp_path: Path) -> None:
    (tmp_path / "lonely.tflite").write_bytes(b"not a model")
    proc = run_pifed("predict", "--model", str(tmp_path / "lonely.tflite"), "Ivanov")
    assert proc.returncode == 2 and "manifest" in proc.stderr


def test_help_lists_every_subcommand() -> None:
    proc = subprocess.run(["pifed", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for cmd in ("data", "train", "evaluate", "predict"):
        assert cmd in proc.stdout


def test_bad_round_flags_exit_2_before_anything_is_written(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    proc = run_pifed("server", "--db", str(db), "--insecure", "--local-steps", "0")
    assert proc.returncode == 2 and "--local-steps" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and list(tmp_path.iterdir()) == []
    proc = run_pifed("demo", "--out", str(tmp_path / "demo"), "--devices", "1")
    assert proc.returncode == 2 and "--devices" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and list(tmp_path.iterdir()) == []
