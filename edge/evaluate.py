"""Evaluate a deployed .tflite on a directory of names laid out like the data set.

This is what a Pi runs on its held-out names; only the resulting metrics ever leave the Pi in
the clear. Its confusion counts (true x predicted language, issue 22) leave it only as its input
to the round's quality session, a secure-aggregation sum (``edge.secagg_member.quality_input``),
since one Pi's per-language counts would tell the coordinator which languages that Pi holds.
"""

from __future__ import annotations

import os

import numpy as np

from edge.runtime import Classifier
from model.dataset import NamesDataset, load_names
from model.manifest import ManifestError
from model.metrics import classification_metrics, confusion_matrix


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
    return evaluate_with_confusion(clf, names, labels)[0]


def evaluate_with_confusion(
    clf: Classifier, names: list[str], labels: np.ndarray
) -> tuple[dict, np.ndarray]:
    """Metrics and the confusion counts (``[true, predicted]``, int64, the model's language
    order) of one pass of ``clf``: the quality session sums the same predictions the gate's
    metrics come from."""
    preds = np.argmax(clf.logits(clf.vocab.encode(names)), axis=1)
    n_classes = len(clf.languages)
    metrics = classification_metrics(labels, preds, n_classes)
    metrics["model"] = clf.path.name
    metrics["kind"] = clf.kind
    return metrics, confusion_matrix(labels, preds, n_classes)


def evaluate_dir(model_path: str | os.PathLike[str], data_dir: str | os.PathLike[str]) -> dict:
    """Metrics of one .tflite (with its manifest beside it) on every name under ``data_dir``."""
    clf = Classifier(model_path)
    ds = load_names(data_dir)
    return evaluate_names(clf, list(ds.names), labels_for_model(ds, clf.languages))
