"""Metric known-answer tests."""

from __future__ import annotations

import numpy as np
import pytest

from model.metrics import classification_metrics, confusion_matrix


def test_known_answers() -> None:
    y = np.array([0, 0, 0, 0, 1, 1, 2])
    p = np.array([0, 0, 0, 1, 1, 0, 2])
    m = classification_metrics(y, p, 4)  # class 3 absent: excluded from the means
    assert m["accuracy"] == pytest.approx(5 / 7)
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 1 / 2 + 1) / 3)
    f1_0 = 2 * (3 / 4) * (3 / 4) / (3 / 4 + 3 / 4)
    f1_1 = 2 * (1 / 2) * (1 / 2) / 1.0
    assert m["macro_f1"] == pytest.approx((f1_0 + f1_1 + 1.0) / 3)
    assert confusion_matrix(y, p, 4)[0].tolist() == [3, 1, 0, 0]
    assert m["per_class_recall"][3] is None


def test_empty_input_is_refused() -> None:
    with pytest.raises(ValueError, match="zero examples"):
        classification_metrics(np.array([]), np.array([]), 2)
