"""Classification metrics in numpy, shared by training, simulation and the Pi's evaluator.

Balanced accuracy (mean per-language recall) and macro-F1 sit beside plain accuracy because the
data is heavily imbalanced: Russian and English are 65% of the lines.
"""

from __future__ import annotations

import numpy as np

# The scores a Pi reports for a model version, and that the gate may compare: one list for the
# evaluator, the coordinator, the gate, the CLI and the benchmarks.
METRIC_NAMES = ("accuracy", "balanced_accuracy", "macro_f1")
# What one device's evaluation report carries to the coordinator: its example count and scores.
DEVICE_REPORT_FIELDS = ("n", *METRIC_NAMES)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts[true, pred] as int64."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return cm


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict:
    """accuracy, balanced_accuracy, macro_f1, n and per-class recall (classes present in y_true)."""
    y_true = np.asarray(y_true)
    if len(y_true) == 0:
        raise ValueError("cannot compute metrics on zero examples")
    cm = confusion_matrix(y_true, y_pred, n_classes)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    tp = np.diag(cm).astype(np.float64)
    present = support > 0
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=present)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {
        "n": len(y_true),
        "accuracy": float(tp.sum() / len(y_true)),
        "balanced_accuracy": float(recall[present].mean()),
        "macro_f1": float(f1[present].mean()),
        "per_class_recall": [float(r) if p else None for r, p in zip(recall, present, strict=True)],
    }
