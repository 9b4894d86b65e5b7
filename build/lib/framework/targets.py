"""Target checks and shapes shared by the losses.

`prepare_targets` runs once per `fit` and validates and converts everything. The
`*_for_forward` helpers run once per batch when targets are handed straight to a loss's
`forward`: they only repair the shape (an (n, 1) column and an (n,) vector mean the same),
so a direct call agrees with `fit` for the price of a shape check, never a copy of the data.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numeric(name: str, y, what: str) -> np.ndarray:
    """`y` as an array of numbers (bool, integer or float), else a TypeError naming the loss."""
    y = np.asarray(y)
    if y.dtype.kind not in "iubf":
        raise TypeError(f"{name}: {what} must be numeric, got dtype {y.dtype}")
    return y


def _outputs(n_out: int) -> str:
    return "1 output" if n_out == 1 else f"{n_out} outputs"


def class_labels(name: str, y: np.ndarray, n_out: int) -> np.ndarray:
    """Whole-number labels (n,) in [0, n_out) as int64: one class per output, as torch's target bounds."""
    if y.dtype.kind == "f" and (not np.isfinite(y).all() or not np.all(y == np.round(y))):
        raise ValueError(f"{name}: class labels must be whole numbers, got non-integer values")
    y = y.astype(np.int64, copy=False)
    if y.size and (y.min() < 0 or y.max() >= n_out):
        raise ValueError(f"{name}: labels must be in [0, {n_out - 1}] for a network with {_outputs(n_out)}, "
                         f"got values in [{y.min()}, {y.max()}]")
    return y


def one_hot(labels: np.ndarray, n_out: int, dtype) -> np.ndarray:
    """Rows of width `n_out` with a 1 at each label."""
    rows = np.zeros((len(labels), n_out), dtype=dtype)
    rows[np.arange(len(labels)), labels] = 1
    return rows


def class_targets(name: str, y, n_out: int, dtype) -> np.ndarray:
    """Labels (n,) or (n, 1) as int64 (n,), or probability rows (n, n_out) as `dtype`."""
    y = numeric(name, y, "labels")
    if y.ndim == 2 and y.shape[1] == n_out and n_out > 1:
        if not np.isfinite(y).all():
            raise ValueError(f"{name}: one-hot labels contain NaN or inf")
        return y.astype(dtype, copy=False)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{name}: expected labels of shape (n,) or one-hot (n, {n_out}), got shape {y.shape}")
    return class_labels(name, y, n_out)


def column_targets(name: str, y, n_out: int, dtype, check: Callable[[str, np.ndarray], None]) -> np.ndarray:
    """Element-wise targets (n, n_out) as `dtype`, after `check(name, y)` of their values.

    (n,) or (n, 1) targets of a single output become a column; for several outputs they
    are class labels and are one-hot encoded, as the classification losses do.
    """
    y = numeric(name, y, "targets")
    shape = y.shape
    if n_out > 1 and y.ndim == 2 and shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 1:
        y = y[:, None] if n_out == 1 else one_hot(class_labels(name, y, n_out), n_out, dtype)
    if y.ndim != 2 or y.shape[1] != n_out:
        raise ValueError(f"{name}: expected targets of shape (n, {n_out}) or (n,), got shape {shape}")
    check(name, y)
    return y.astype(dtype, copy=False)


def check_unit_interval(name: str, y: np.ndarray) -> None:
    """Binary targets: every value in [0, 1] (NaN fails too)."""
    if not np.all((y >= 0) & (y <= 1)):
        raise ValueError(f"{name}: targets must be in [0, 1], got values outside it")


def check_finite(name: str, y: np.ndarray) -> None:
    """Regression targets: no NaN or inf."""
    if not np.isfinite(y).all():
        raise ValueError(f"{name}: targets contain NaN or inf")


def labels_for_forward(name: str, output: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Targets of a label loss as its `forward` indexes them: labels (n,) in [0, k), or rows like `output`."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]  # a column of labels, as prepare_targets reads it
    if y.ndim == 1 and len(y) == len(output):
        return class_labels(name, y, output.shape[1])
    if y.shape != output.shape:
        raise ValueError(f"{name}: expected labels of shape ({len(output)},) or {output.shape}, got shape {y.shape}")
    return y


def columns_for_forward(name: str, output: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Targets of an element-wise loss shaped like `output` (see `column_targets`), without copying a column."""
    n, k = output.shape
    if y.shape in ((n,), (n, 1)):
        if k == 1:
            return y.reshape(n, 1)
        return one_hot(class_labels(name, y.reshape(n), k), k, output.dtype)
    raise ValueError(f"{name}: expected targets of shape {output.shape} or ({n},), got shape {y.shape}")
