"""Checking a device's own update against the configured vector lengths, and flattening it.

Secure aggregation sums one flat vector per client, so every client must submit exactly the
vectors the configuration names (``SecAggConfig.vector_lengths``), in order. A wrong count,
length or dtype raises on the device that made it, before any share is opened, rather than be
silently broadcast or coerced by numpy. Pure checks on arrays, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import DTypeError, ShapeError

__all__ = ["flatten_update"]


def flatten_update(update: Sequence[np.ndarray], lengths: Sequence[int]) -> np.ndarray:
    """One float64 vector of ``update``'s 1-D float arrays, one per entry of ``lengths``.

    Raises ShapeError (a bare array, a wrong count or shape) or DTypeError (not a numpy array,
    not a float dtype) instead of broadcasting or coercing.
    """
    if isinstance(update, np.ndarray) or not isinstance(update, Sequence):
        raise ShapeError(
            f"update must be a sequence of {len(lengths)} 1-D float arrays (one per entry "
            "of config.vector_lengths); wrap a single vector in a list"
        )
    if len(update) != len(lengths):
        raise ShapeError(f"expected {len(lengths)} vectors, got {len(update)}")
    for i, (vec, length) in enumerate(zip(update, lengths, strict=True)):
        if not isinstance(vec, np.ndarray):
            raise DTypeError(f"vector {i} must be a numpy array, got {type(vec).__name__}")
        if vec.dtype.kind != "f":
            raise DTypeError(f"vector {i} has dtype {vec.dtype}; pass float32 or float64")
        if vec.ndim != 1 or vec.shape[0] != length:
            raise ShapeError(
                f"vector {i} has shape {vec.shape}, expected ({length},); flatten it or fix "
                "config.vector_lengths"
            )
    return np.concatenate([vec.astype(np.float64, copy=False) for vec in update])
