"""The Pi's edge session, run the same way on x86 and under aarch64 emulation, for comparison.

Usage: python [-P] edge_driver.py MODEL_DIR NAMES_DIR OUT_DIR

Writes OUT_DIR/report.json and OUT_DIR/arrays.npz. Like tests/edge/no_tf_driver.py it loads every
inference artifact, evaluates it on NAMES_DIR with the Pi's own code (``edge.evaluate``), trains
through ``train.tflite`` and restores the weights, in a process whose import system refuses
TensorFlow. In addition it keeps each artifact's logits on every name (captured from the very
evaluation call, so inference runs once per artifact: emulated float inference is slow), and it
records, *before* the block is installed, whether TensorFlow is installed at all and what
``import tensorflow`` does: on the emulated Pi it must fail with ModuleNotFoundError.
Standard library, numpy and the edge set only: no pytest.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

BLOCKED = ("tensorflow", "keras", "tensorflow_federated", "tf_keras", "jax")
KINDS = ("float", "dynamic", "int8")
# The same on-device training as tests/edge/no_tf_driver.py.
TRAIN_SEED, TRAIN_NAMES, TRAIN_EPOCHS, TRAIN_LR, LOGIT_ROWS = 0, 256, 4, 0.5, 64


def tensorflow_status() -> dict:
    """Which heavy packages are installed, and what ``import tensorflow`` does if it is not."""
    installed = {m: importlib.util.find_spec(m) is not None for m in BLOCKED}
    status: dict = {"installed": installed, "import_tensorflow": None}
    if not installed["tensorflow"]:  # never import the real thing: the x86 venv has it
        try:
            importlib.import_module("tensorflow")
            status["import_tensorflow"] = "imported"
        except ImportError as exc:
            status["import_tensorflow"] = type(exc).__name__
    return status


class _Block:
    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: the edge runtime must not need it")
        return None


def main() -> None:
    model_dir, names_dir, out_dir = sys.argv[1:4]
    t0 = time.perf_counter()
    report: dict = {"tensorflow": tensorflow_status()}
    sys.meta_path.insert(0, _Block())

    import numpy as np

    import edge
    import model
    from edge import runtime
    from edge.evaluate import evaluate_dir, labels_for_model
    from edge.runtime import Classifier, runtime_name
    from edge.trainer import OnDeviceTrainer
    from model.dataset import load_names
    from model.manifest import ModelManifest

    libc, libc_version = platform.libc_ver()
    report["platform"] = {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "libc": f"{libc} {libc_version}",
        "numpy": np.__version__,
        "runtime": runtime_name(),
        "training_runtime": runtime_name("training"),
        "edge_from": str(Path(edge.__file__).parent),
        "model_from": str(Path(model.__file__).parent),
    }
    timings: dict[str, float] = {"imports": time.perf_counter() - t0}

    # Evaluate each artifact with the Pi's code path and keep the logits it computed.
    captured: dict[str, np.ndarray] = {}
    plain_logits = Classifier.logits

    def recording_logits(self: Classifier, ids: np.ndarray, batch: int = 256) -> np.ndarray:
        out = plain_logits(self, ids, batch)
        captured[self.kind] = out
        return out

    Classifier.logits = recording_logits  # type: ignore[method-assign]
    manifest = ModelManifest.load(model_dir)
    report["eval"] = {}
    report["output_quantization"] = {}
    arrays: dict[str, np.ndarray] = {}
    for kind in KINDS:
        t = time.perf_counter()
        path = manifest.artifact_path(model_dir, kind)
        report["eval"][kind] = evaluate_dir(path, names_dir)
        scale, zero = runtime.make_interpreter(path).get_output_details()[0]["quantization"]
        report["output_quantization"][kind] = {"scale": float(scale), "zero_point": int(zero)}
        arrays[f"logits_{kind}"] = captured.pop(kind)
        timings[f"eval_{kind}"] = time.perf_counter() - t
    Classifier.logits = plain_logits  # type: ignore[method-assign]

    # On-device training through train.tflite, then restore the initial weights.
    t = time.perf_counter()
    clf = Classifier.from_dir(model_dir, "float")
    ds = load_names(names_dir)
    ids = clf.vocab.encode(list(ds.names))
    labels = labels_for_model(ds, clf.languages)
    arrays["labels"] = labels
    trainer = OnDeviceTrainer(model_dir)
    initial = trainer.weights()
    arrays["infer_logits"] = trainer.logits(ids[:LOGIT_ROWS])
    rng = np.random.default_rng(TRAIN_SEED)
    sel = rng.choice(len(ids), TRAIN_NAMES, replace=False)
    report["losses"] = trainer.train_epochs(
        ids[sel], labels[sel], epochs=TRAIN_EPOCHS, lr=TRAIN_LR, rng=rng
    )
    trained = trainer.weights()
    arrays["trained_logits"] = trainer.logits(ids[:LOGIT_ROWS])
    trainer.set_weights(initial)
    restored = trainer.weights()
    report["restored_exactly"] = all(
        a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(initial, restored, strict=True)
    )
    arrays["restored_logits"] = trainer.logits(ids[:LOGIT_ROWS])
    timings["train"] = time.perf_counter() - t
    report["num_weights"] = len(initial)
    arrays.update({f"initial_{i}": w for i, w in enumerate(initial)})
    arrays.update({f"trained_{i}": w for i, w in enumerate(trained)})

    report["tf_modules_loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    report["interpreter_module"] = runtime.interpreter_class().__module__
    timings["total"] = time.perf_counter() - t0
    report["timings"] = timings
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "arrays.npz", **arrays)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({"machine": platform.machine(), "seconds": round(timings["total"], 1)}))


if __name__ == "__main__":
    main()
