"""Which TFLite runtime the edge code loads for what, and what PIFED_TFLITE_RUNTIME does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge import runtime


def test_inference_runs_on_ai_edge_litert_and_training_on_tflite_runtime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(runtime.RUNTIME_ENV, raising=False)
    # What the locked edge set installs on Python 3.11 (see edge/runtime.py for why).
    assert runtime.runtime_name() == runtime.runtime_name("inference") == "ai_edge_litert"
    assert runtime.runtime_name("training") == "tflite_runtime"


@pytest.mark.parametrize("name", runtime.RUNTIMES)
def test_a_named_runtime_is_used_for_both_purposes(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(runtime.RUNTIME_ENV, name)
    for purpose in runtime.PREFERENCE:
        assert runtime.interpreter_class(purpose).__module__ == f"{name}.interpreter"


def test_an_unknown_runtime_name_is_refused_with_the_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(runtime.RUNTIME_ENV, "tensorflow")
    with pytest.raises(runtime.RuntimeMissing, match="PIFED_TFLITE_RUNTIME='tensorflow'") as e:
        runtime.interpreter_class()
    assert "tflite_runtime, ai_edge_litert" in str(e.value)


def test_an_unknown_purpose_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="inference, training"):
        runtime.interpreter_class("predict")


def test_a_named_runtime_that_is_missing_is_an_error_not_a_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_litert(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("ai_edge_litert"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_litert)
    monkeypatch.setenv(runtime.RUNTIME_ENV, "ai_edge_litert")
    with pytest.raises(
        runtime.RuntimeMissing, match=r"ai_edge_litert: .*unset PIFED_TFLITE_RUNTIME"
    ):
        runtime.interpreter_class()
    # Without the variable, inference falls back to the other runtime.
    monkeypatch.delenv(runtime.RUNTIME_ENV)
    assert runtime.runtime_name("inference") == "tflite_runtime"


@pytest.mark.slow
def test_both_runtimes_in_one_process_train_and_infer(trained_run: Path) -> None:
    """The fleet client holds an ai-edge-litert classifier and a tflite-runtime trainer at once."""
    from edge.runtime import Classifier
    from edge.trainer import OnDeviceTrainer

    model_dir = trained_run / "model"
    clf = Classifier.from_dir(model_dir, "int8")
    trainer = OnDeviceTrainer(model_dir)
    assert type(clf._interp).__module__ == "ai_edge_litert.interpreter"
    assert type(trainer._interp).__module__ == "tflite_runtime.interpreter"
    ids = clf.vocab.encode(["Nakamura", "Schmidt", "Rossi"])
    before = clf.logits(ids)
    b = trainer.batch
    x = np.resize(ids, (b, ids.shape[1])).astype(np.int32)
    y, w = np.zeros(b, np.int32), np.ones(b, np.float32)
    losses = [trainer.train_step(x, y, w, 0.1) for _ in range(3)]
    assert losses[-1] < losses[0]
    np.testing.assert_array_equal(clf.logits(ids), before)  # separate interpreters, untouched


@pytest.mark.slow
@pytest.mark.parametrize("name", runtime.RUNTIMES)
def test_every_artifact_loads_and_runs_on_each_runtime(
    monkeypatch: pytest.MonkeyPatch, trained_run: Path, name: str
) -> None:
    """Builtin ops only: either runtime alone (neither has Flex) runs every artifact."""
    from edge.runtime import Classifier
    from edge.trainer import OnDeviceTrainer

    monkeypatch.setenv(runtime.RUNTIME_ENV, name)
    model_dir = trained_run / "model"
    for kind in ("float", "dynamic", "int8"):
        clf = Classifier.from_dir(model_dir, kind)
        assert type(clf._interp).__module__ == f"{name}.interpreter"
        logits = clf.logits(clf.vocab.encode(["Nakamura", "Schmidt"]))
        assert logits.shape == (2, len(clf.languages)) and np.isfinite(logits).all()
    trainer = OnDeviceTrainer(model_dir)
    assert type(trainer._interp).__module__ == f"{name}.interpreter"
    assert len(trainer.weights()) == len(trainer.manifest.weights)


def test_a_pi_without_an_inference_runtime_is_told_so_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from edge.runtime import RuntimeMissing
    from edge.trainer_choice import TRAINER_ENV, TrainerChoiceError, check_runtimes

    assert "probed" in check_runtimes({})
    assert "training on numpy" in check_runtimes({TRAINER_ENV: "numpy"})
    with pytest.raises(TrainerChoiceError, match="use tflite, numpy or auto"):
        check_runtimes({TRAINER_ENV: "cuda"})
    monkeypatch.setenv("PIFED_TFLITE_RUNTIME", "no_such_runtime")
    with pytest.raises(RuntimeMissing, match="is not a TFLite runtime"):
        check_runtimes({})
