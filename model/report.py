"""Centralized-run reporting: Keras vs TFLite parity and the confusion-matrix figure.

TF-free (numpy + matplotlib), so the same plots serve the simulation and the fleet reports.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def parity(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """Max |logit difference| and argmax agreement of two logit arrays over the same names."""
    if reference.shape != candidate.shape:
        raise ValueError(f"logit shapes differ: {reference.shape} vs {candidate.shape}")
    agree = np.argmax(reference, axis=1) == np.argmax(candidate, axis=1)
    return {
        "max_abs_logit_diff": float(np.max(np.abs(reference - candidate))),
        "argmax_agreement": float(agree.mean()),
    }


def plot_confusion(cm: np.ndarray, languages: tuple[str, ...], path: Path, title: str) -> None:
    """Row-normalised confusion matrix (recall per true language) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(9, 8))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(languages)), languages, rotation=90)
    ax.set_yticks(range(len(languages)), languages)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(len(languages)):
        for j in range(len(languages)):
            if cm[i, j]:
                ax.text(
                    j,
                    i,
                    str(cm[i, j]),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
