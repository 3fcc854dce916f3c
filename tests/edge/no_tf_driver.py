"""Run the edge runtime in a process where TensorFlow *cannot* be imported.

Usage: python no_tf_driver.py MODEL_DIR NAMES_DIR OUT.npz
A meta-path finder makes any import of tensorflow / keras / tensorflow_federated raise, so the
process proves that a Pi without TensorFlow can load every artifact, evaluate and train.
"""

from __future__ import annotations

import json
import sys

BLOCKED = ("tensorflow", "keras", "tensorflow_federated", "tf_keras", "jax")


class _Block:
    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: the edge runtime must not need it")
        return None


sys.meta_path.insert(0, _Block())

import numpy as np  # noqa: E402

from edge.evaluate import evaluate_dir, labels_for_model  # noqa: E402
from edge.runtime import Classifier, runtime_name  # noqa: E402
from edge.trainer import OnDeviceTrainer  # noqa: E402
from model.dataset import load_names  # noqa: E402
from model.manifest import ModelManifest  # noqa: E402


def main() -> None:
    model_dir, names_dir, out = sys.argv[1:4]
    manifest = ModelManifest.load(model_dir)
    report: dict = {"runtime": runtime_name(), "eval": {}}
    for kind in ("float", "dynamic", "int8"):
        path = manifest.artifact_path(model_dir, kind)
        report["eval"][kind] = evaluate_dir(path, names_dir)
    clf = Classifier.from_dir(model_dir, "float")
    ds = load_names(names_dir)
    ids = clf.vocab.encode(list(ds.names))
    labels = labels_for_model(ds, clf.languages)

    trainer = OnDeviceTrainer(model_dir)
    initial = trainer.weights()
    float_logits = clf.logits(ids[:64])
    infer_logits = trainer.logits(ids[:64])
    rng = np.random.default_rng(0)
    sel = rng.choice(len(ids), 256, replace=False)
    losses = trainer.train_epochs(ids[sel], labels[sel], epochs=4, lr=0.5, rng=rng)
    trained = trainer.weights()
    trained_logits = trainer.logits(ids[:64])
    trainer.set_weights(initial)
    restored = trainer.weights()
    report["losses"] = losses
    report["restored_exactly"] = all(
        np.array_equal(a, b) for a, b in zip(initial, restored, strict=True)
    )
    report["tf_modules_loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    np.savez(
        out,
        ids=ids[:64],
        float_logits=float_logits,
        infer_logits=infer_logits,
        trained_logits=trained_logits,
        **{f"initial_{i}": w for i, w in enumerate(initial)},
        **{f"trained_{i}": w for i, w in enumerate(trained)},
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
