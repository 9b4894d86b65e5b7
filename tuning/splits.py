"""Splits: the test rows held out behind `test()` (which counts every read), and the rows trials learn
from, cut into training and validation rows once (holdout) or k times (cross-validation)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .datasets import Dataset
from .errors import UserError


def rows(X, index: np.ndarray):
    """The rows `index` of an array or a DataFrame (numbered 0.. in their new order)."""
    return X.iloc[index].reset_index(drop=True) if isinstance(X, pd.DataFrame) else X[index]


@dataclass
class Splits:
    """The rows trials learn from (`rest`: training and validation), the ways they are cut into training and
    validation rows (`folds`: one holdout split, or k folds), and the test rows behind `test()`, which counts
    every read."""

    dataset: Dataset
    X_rest: np.ndarray | pd.DataFrame
    y_rest: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]  # (training, validation) positions in the rest
    cross_validated: bool
    _X_test: np.ndarray | pd.DataFrame
    _y_test: np.ndarray
    test_rows: np.ndarray  # each test row's position in the source (its data row in a CSV; in x_test if given)
    test_reads: int = 0

    def fold(self, k: int) -> tuple:
        """(X_train, y_train, X_val, y_val) of fold `k` (0 for the holdout split), raw."""
        train, val = self.folds[k]
        return rows(self.X_rest, train), self.y_rest[train], rows(self.X_rest, val), self.y_rest[val]

    @property
    def X_train(self):
        return rows(self.X_rest, self.folds[0][0])

    @property
    def y_train(self) -> np.ndarray:
        return self.y_rest[self.folds[0][0]]

    @property
    def X_val(self):
        return rows(self.X_rest, self.folds[0][1])

    @property
    def y_val(self) -> np.ndarray:
        return self.y_rest[self.folds[0][1]]

    def refit_rows(self) -> np.ndarray:
        """Positions in the rest the final model trains on: every non-test row (a holdout's training rows,
        then its validation rows)."""
        return np.concatenate(self.folds[0]) if not self.cross_validated else np.arange(len(self.y_rest))

    def test(self) -> tuple:
        """The held-out test rows (raw). Each call is counted in `test_reads`."""
        self.test_reads += 1
        return self._X_test, self._y_test

    @property
    def n_test(self) -> int:
        return len(self._y_test)


def holdout(n: int, test_size: float, seed: int, stratify: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) positions of `n` rows, exactly as scikit-learn's `train_test_split(np.arange(n),
    test_size=test_size, random_state=seed, stratify=stratify)` cuts them (its StratifiedShuffleSplit or
    ShuffleSplit with a RandomState(seed)), without importing scikit-learn (with scipy, about a second).
    Whatever scikit-learn would refuse is handed to it, so its error is the one raised; equality with it
    over seeds, sizes and class balances is tested."""
    if not (isinstance(test_size, float) and 0 < test_size < 1 and isinstance(seed, int) and n > 0) or \
            (n_test := math.ceil(test_size * n)) >= n:
        return _sklearn_holdout(n, test_size, seed, stratify)
    n_train = n - n_test
    rng = np.random.RandomState(seed)
    if stratify is None:
        permutation = rng.permutation(n)
        return permutation[n_test:n_test + n_train], permutation[:n_test]
    y = np.asarray(stratify)
    if y.ndim != 1 or len(y) != n:
        return _sklearn_holdout(n, test_size, seed, stratify)
    _, y_indices, class_counts = np.unique(y, return_inverse=True, return_counts=True)
    if class_counts.min() < 2 or min(n_train, n_test) < len(class_counts):
        return _sklearn_holdout(n, test_size, seed, stratify)
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    n_i = _approximate_mode(class_counts, n_train, rng)
    t_i = _approximate_mode(class_counts - n_i, n_test, rng)
    train, test = [], []
    for i in range(len(class_counts)):
        permuted = class_indices[i].take(rng.permutation(class_counts[i]), mode="clip")
        train.extend(permuted[:n_i[i]])
        test.extend(permuted[n_i[i]:n_i[i] + t_i[i]])
    return rng.permutation(train), rng.permutation(test)


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """Rows per class of `n_draws` drawn from `class_counts`, ties broken by `rng` (scikit-learn's own rule)."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            floored[rng.choice(inds, size=add_now, replace=False)] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def _sklearn_holdout(n: int, test_size, seed, stratify) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(np.arange(n), test_size=test_size, random_state=seed, stratify=stratify)
    return train, test


def split(dataset: Dataset, test_size: float, val_size: float, seed: int, folds: int = 0) -> Splits:
    """Stratified (for classification) test split, then a validation split or `folds` folds.

    The holdout splits are scikit-learn's `train_test_split` (see `holdout`); folds its StratifiedKFold / KFold.
    `val_size` is a share of what is left after the test split. A dataset with its own test split
    (.npz x_test, MNIST t10k) keeps it. With `folds` = k > 0, the non-test rows are cut into k folds
    (StratifiedKFold / KFold, shuffled with `seed`) and `val_size` is not used.
    """
    y = dataset.y
    stratify = dataset.task == "classification"
    try:
        if dataset.test is None:
            rest, test_index = holdout(len(y), test_size, seed, y if stratify else None)
            X_test, y_test = rows(dataset.X, test_index), y[test_index]
            test_rows = test_index if dataset.source_rows is None else dataset.source_rows[test_index]
        else:
            rest, (X_test, y_test) = np.arange(len(y)), dataset.test
            test_rows = np.arange(len(y_test))
        y_rest = y[rest]
        if folds:
            from sklearn.model_selection import KFold, StratifiedKFold

            cutter = (StratifiedKFold if stratify else KFold)(folds, shuffle=True, random_state=seed)
            cuts = [(train, val) for train, val in cutter.split(np.zeros(len(rest)), y_rest)]
        else:  # positions within the rest: the same rows as splitting the rest's own indices
            cuts = [holdout(len(rest), val_size, seed, y_rest if stratify else None)]
    except ValueError as exc:
        how = f"{folds} folds" if folds else f"val_size={val_size}"
        raise UserError(f"data: cannot split {dataset.name} ({len(y)} rows) with test_size={test_size}, {how}: "
                        f"{exc}") from None
    return Splits(dataset, rows(dataset.X, rest), y_rest, cuts, bool(folds), X_test, y_test, test_rows)
