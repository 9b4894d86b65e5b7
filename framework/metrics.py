"""Metrics on predictions: counts that add up over batches, and their ratios."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def true_classes(y: np.ndarray) -> np.ndarray:
    """Class indices from integer labels (n,) or one-hot / probability rows (n, k)."""
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)
    return y.reshape(len(y)).astype(np.int64, copy=False)


def correct_count(output: np.ndarray, labels: np.ndarray) -> int:
    """How many rows of `output` have their largest entry at their integer label."""
    return int(np.count_nonzero(output.argmax(axis=1) == labels))


def accuracy_counter(loss, y: np.ndarray) -> tuple[Callable[[np.ndarray, np.ndarray], int], np.ndarray]:
    """`(count, targets)` for the accuracy of `loss` on prepared targets `y`.

    `count(output, targets[rows])` is the number of hits in a batch, and accuracy is the
    total over `targets.size`: rows for an argmax loss (softmax, categorical), elements
    for a binary one (Keras' binary accuracy, `output > loss.threshold` against 0/1 targets).
    """
    threshold = loss.threshold
    if threshold is None:
        return correct_count, true_classes(y)

    def count(output: np.ndarray, targets: np.ndarray) -> int:
        return int(np.count_nonzero((output > threshold) == targets))

    return count, y


METRICS = ("accuracy",)
