"""Metrics on predictions: counts that add up over batches, and their ratios."""

from __future__ import annotations

import numpy as np


def predicted_classes(output: np.ndarray) -> np.ndarray:
    """Class indices from network output: argmax of rows, or a 0.5 threshold for one sigmoid output."""
    if output.ndim == 2 and output.shape[1] > 1:
        return output.argmax(axis=1)
    return (output.reshape(len(output)) > 0.5).astype(np.int64)


def true_classes(y: np.ndarray) -> np.ndarray:
    """Class indices from integer labels (n,) or one-hot / multi-column targets (n, k)."""
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)
    return y.reshape(len(y)).astype(np.int64, copy=False)


def correct_count(output: np.ndarray, labels: np.ndarray) -> int:
    """How many rows of `output` predict their integer label."""
    # fit calls this every batch: the usual multi-class case skips predicted_classes' call
    predicted = output.argmax(axis=1) if output.ndim == 2 and output.shape[1] > 1 else predicted_classes(output)
    return int(np.count_nonzero(predicted == labels))


METRICS = ("accuracy",)
