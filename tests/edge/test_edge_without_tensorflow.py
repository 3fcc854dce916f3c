"""The Pi's side runs with tflite-runtime alone, and its weights match Keras exactly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # starts TensorFlow, TFF or real processes

DRIVER = Path(__file__).with_name("no_tf_driver.py")


@pytest.fixture(scope="module")
def edge_session(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    out = tmp_path_factory.mktemp("edge") / "edge.npz"
    proc = subprocess.run(
        [
            sys.executable,
            str(DRIVER),
            str(trained_run / "model"),
            str(trained_run / "test_names"),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    arrays = dict(np.load(out))
    return report, arrays


def test_edge_process_never_imports_tensorflow(edge_session: tuple[dict, dict]) -> None:
    report, _ = edge_session
    assert report["tf_modules_loaded"] == []
    assert report["runtime"] in ("tflite_runtime", "ai_edge_litert")


def test_every_inference_artifact_runs_on_builtins_and_matches_the_cli_metrics(
    edge_session: tuple[dict, dict], trained_run: Path
) -> None:
    report, _ = edge_session
    cli = json.loads((trained_run / "metrics.json").read_text())
    for kind in ("float", "dynamic", "int8"):
        edge_metrics = report["eval"][kind]
        assert edge_metrics["n"] == cli["data"]["test"]
        assert edge_metrics["accuracy"] == pytest.approx(cli["tflite"][kind]["accuracy"])


def test_on_device_training_lowers_the_loss(edge_session: tuple[dict, dict]) -> None:
    report, arrays = edge_session
    losses = report["losses"]
    assert losses[-1] < losses[0] * 0.9, losses
    assert not np.allclose(arrays["trained_logits"], arrays["infer_logits"])


def test_weights_round_trip_exactly_between_tflite_and_keras(
    edge_session: tuple[dict, dict], trained_run: Path
) -> None:
    from model.gru import load_classifier

    report, arrays = edge_session
    assert report["restored_exactly"]
    model = load_classifier(trained_run / "model" / "keras_model.keras")
    keras_w = [v.numpy() for v in model.trainable_variables]
    initial = [arrays[f"initial_{i}"] for i in range(len(keras_w))]
    for k, t in zip(keras_w, initial, strict=True):  # Keras -> TFLite: bit-exact
        assert k.dtype == t.dtype and np.array_equal(k, t)
    trained = [arrays[f"trained_{i}"] for i in range(len(keras_w))]
    for var, w in zip(model.trainable_variables, trained, strict=True):  # TFLite -> Keras
        var.assign(w)
    assert all(
        np.array_equal(v.numpy(), w)
        for v, w in zip(model.trainable_variables, trained, strict=True)
    )
    keras_logits = model(arrays["ids"], training=False).numpy()
    np.testing.assert_allclose(keras_logits, arrays["trained_logits"], atol=1e-4)
    np.testing.assert_allclose(arrays["infer_logits"], arrays["float_logits"], atol=1e-4)


def test_one_on_device_sgd_step_equals_the_tensorflow_gradient_step(trained_run: Path) -> None:
    """train.tflite's gradients are TensorFlow's: the fleet and the TFF simulation learn alike.

    The batch repeats character ids (the padding id 0 in every row), which a wrong embedding
    gradient (a scatter that overwrites instead of adding) would get wrong, and masks padding
    rows with weight 0.
    """
    import tensorflow as tf

    from edge.trainer import OnDeviceTrainer
    from model.gru import load_classifier, weighted_cross_entropy

    trainer = OnDeviceTrainer(trained_run / "model")
    model = load_classifier(trained_run / "model" / "keras_model.keras")
    vocab, n = trainer.manifest.vocab, len(trainer.manifest.languages)
    rng = np.random.default_rng(7)
    x = rng.integers(0, vocab.size, size=(trainer.batch, vocab.max_len)).astype(np.int32)
    x[:, :4] = 0
    y = rng.integers(0, n, size=trainer.batch).astype(np.int32)
    w = np.ones(trainer.batch, np.float32)
    w[-3:] = 0.0
    before = trainer.weights()
    trainer.train_step(x, y, w, 0.5)
    with tf.GradientTape() as tape:
        loss = weighted_cross_entropy(model(x, training=False), y, w, n)
    grads = tape.gradient(loss, model.trainable_variables)
    for var, grad, old, new in zip(
        model.trainable_variables, grads, before, trainer.weights(), strict=True
    ):
        expected = var.numpy() - 0.5 * tf.convert_to_tensor(grad).numpy()
        assert np.abs(new - old).max() > 0, var.name  # every tensor moved
        np.testing.assert_allclose(new, expected, atol=1e-6, err_msg=var.name)
