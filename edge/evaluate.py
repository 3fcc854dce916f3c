"""Evaluate a deployed .tflite on a directory of names laid out like the data set.

This is what a Pi runs on its held-out names; only the resulting metrics ever leave the Pi.
"""

from __future__ import annotations

import os

import numpy as np

from edge.runtime import Classifier
from model.dataset import NamesDataset, load_names
from model.manifest import ManifestError
from model.metrics import classification_metrics


def labels_for_model(ds: NamesDataset, model_languages: tuple[str, ...]) -> np.ndarray:
    """Map the data's language indices onto the model's; unknown languages are an error."""
    unknown = sorted(set(ds.languages) - set(model_languages))
    if unknown:
        raise ManifestError(
            f"the data has languages the model does not know: {', '.join(unknown)}; "
            "evaluate on a directory whose <Language>.txt files the model was trained on"
        )
    remap = np.array([model_languages.index(lang) for lang in ds.languages], dtype=np.int32)
    return remap[ds.labels]


def evaluate_names(clf: Classifier, names: list[str], labels: np.ndarray) -> dict:
    """Metrics of ``clf`` on encoded names with labels in the model's language order."""
    preds = np.argmax(clf.logits(clf.vocab.encode(names)), axis=1)
    metrics = classification_metrics(labels, preds, len(clf.languages))
    metrics["model"] = clf.path.name
    metrics["kind"] = clf.kind
    return metrics


def evaluate_dir(model_path: str | os.PathLike[str], data_dir: str | os.PathLike[str]) -> dict:
    """Metrics of one .tflite (with its manifest beside it) on every name under ``data_dir``."""
    clf = Classifier(model_path)
    ds = load_names(data_dir)
    return evaluate_names(clf, list(ds.names), labels_for_model(ds, clf.languages))
