"""The scaled training and validation arrays every trial of an experiment trains on.

After `share(folder)` the arrays are memory-mapped .npy files and the object pickles as their
paths, so each local worker maps the same pages instead of receiving a copy per trial.

An array's rows are scaled straight from the splits' raw rows, a slice at a time, into one float32
buffer per array: no raw copy of the training rows is made when the scaler does not need one
(`fit_rows`, `scaled_rows`). `release()` drops the scaled features once the search is over (the refit
scales its own rows); they are made again, identically, should anything ask for them later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .preprocess import Affine, Preprocessor, TargetScale, is_table, minmax_dtype, minmax_from_range
from .splits import Splits, rows

ARRAYS = ("X_train", "y_train", "X_val", "y_val")
# Rows gathered and scaled at a time (a few MB of 784 features in float64): framework.ROW_CHUNK's 8192 rows
# would be 50 MB of float64 beside the arrays. Scaling is elementwise, so the slices do not change a bit.
SLICE_ROWS = 1024
SLICE_COLUMNS = 32  # columns a standard scaler is fitted on at a time (every training row of them)


@dataclass
class TrialData:
    """Scaled features and targets of the training and validation rows, with what the network needs to know."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    task: str
    n_outputs: int
    target_std: float = 1.0  # regression: the training targets' std, to report errors in the target's units
    files: dict[str, str] = field(default_factory=dict)  # array name -> .npy path once shared
    # (splits, fold, scale, missing) it was made from, to make the features again after `release()`
    source: tuple | None = field(default=None, repr=False, compare=False)

    @property
    def n_features(self) -> int:
        return self._n_features if "X_train" not in self.__dict__ else self.X_train.shape[1]

    @classmethod
    def for_fold(cls, splits: Splits, fold: int, scale: str, missing: str = "impute") -> TrialData:
        """Fold `fold`'s rows (0: the holdout split) preprocessed with statistics of its training rows only."""
        X_train, X_val = _fold_features(splits, fold, scale, missing)
        train, val = splits.folds[fold]
        y_train, y_val = splits.y_rest[train], splits.y_rest[val]
        dataset, source = splits.dataset, (splits, fold, scale, missing)
        if dataset.task == "classification":
            return cls(X_train, y_train, X_val, y_val, dataset.task, len(dataset.classes), source=source)
        target_scale = TargetScale.fit(y_train)
        return cls(X_train, target_scale.apply(y_train), X_val, target_scale.apply(y_val), dataset.task, 1,
                   target_scale.std, source=source)

    def release(self) -> None:
        """Drop the scaled features (the search is over; the refit scales its own rows). Asked for again,
        they are made again from the splits, the same bit for bit. Data without a source keeps them."""
        if self.source is None or "X_train" not in self.__dict__:
            return
        self._n_features = self.X_train.shape[1]
        del self.X_train, self.X_val

    def __getattr__(self, name: str):
        # Only reached for attributes the instance lacks: the features after `release()`.
        source = self.__dict__.get("source")
        if name not in ("X_train", "X_val") or source is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        self.X_train, self.X_val = _fold_features(*source)
        return self.__dict__[name]

    def share(self, folder: Path) -> TrialData:
        """Write the arrays to `folder` as .npy and return a copy backed by read-only memory maps."""
        folder.mkdir(parents=True, exist_ok=True)
        files = {}
        for name in ARRAYS:
            path = folder / f"{name}.npy"
            np.save(path, getattr(self, name))
            files[name] = str(path)
        return TrialData(**{n: np.load(files[n], mmap_mode="r") for n in ARRAYS}, task=self.task,
                         n_outputs=self.n_outputs, target_std=self.target_std, files=files)

    def in_memory(self) -> TrialData:
        """This data with its arrays pickled by value (for workers on other machines, which lack the files)."""
        return TrialData(*(np.asarray(getattr(self, n)) for n in ARRAYS), self.task, self.n_outputs, self.target_std)

    def __getstate__(self) -> dict:
        if not self.files:  # by value (made again first if released); never the splits it came from
            self.X_train  # noqa: B018
            return {k: v for k, v in self.__dict__.items() if k not in ("source", "_n_features")}
        return {k: v for k, v in self.__dict__.items() if k not in (*ARRAYS, "source", "_n_features")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.source = None  # not pickled: the splits stay in the search process
        for name, path in self.files.items():
            setattr(self, name, np.load(path, mmap_mode="r"))


def _fold_features(splits: Splits, fold: int, scale: str, missing: str) -> tuple[np.ndarray, np.ndarray]:
    """Fold `fold`'s training and validation features, scaled with statistics of its training rows only."""
    train, val = splits.folds[fold]
    if not is_table(splits.X_rest):
        preprocessor = fit_rows(splits.X_rest, train, scale)
        return scaled_rows(preprocessor, splits.X_rest, train), scaled_rows(preprocessor, splits.X_rest, val)
    X_train, _, X_val, _ = splits.fold(fold)
    preprocessor = Preprocessor.fit(X_train, scale, splits.dataset.roles, missing)
    return preprocessor.transform(X_train, "training rows"), preprocessor.transform(X_val, "validation rows")


def fit_rows(X: np.ndarray, index: np.ndarray, scale: str) -> Preprocessor:
    """`Preprocessor.fit(X[index], scale)` for an unnamed array, the same bit for bit, without a copy of the rows:
    min and max are exact in any order, so MinMaxScaler's figures come from the minima and maxima of slices of
    the rows (scikit-learn's own partial_fit where a column holds NaN or inf); StandardScaler's sums run down
    each column in row order, so it is fitted on a copy of a few columns at a time (`_standard_by_columns`);
    "none" reads no rows."""
    n = X.shape[1]
    if scale == "standard" and n:
        return Preprocessor(None, n, _standard_by_columns(X, index), impute=False)
    if scale not in ("minmax", "standard") and n:
        return Preprocessor.fit(rows(X, index), scale)  # a scaler this module does not know: as it was
    if scale != "minmax" or n == 0:
        return Preprocessor(None, n, Affine.fit(scale, X[:0]), impute=False)
    if len(index) and X.dtype.kind in "biuf" and (own := _minmax_by_rows(X, index)) is not None:
        return Preprocessor(None, n, Affine(*own), impute=False)
    from sklearn.preprocessing import MinMaxScaler  # NaN or inf in a column: scikit-learn judges them

    scaler = MinMaxScaler()
    for start in range(0, len(index), SLICE_ROWS):
        scaler.partial_fit(X[index[start:start + SLICE_ROWS]])
    return Preprocessor(None, n, Affine(scaler.scale_.copy(), scaler.min_.copy()), impute=False)


def _minmax_by_rows(X: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """`minmax_scale(X[index])` from the minima and maxima of a slice of rows at a time (exact in any order)."""
    return minmax_from_range(*_column_ranges(X, index, minmax_dtype(X.dtype)))


def _column_ranges(X: np.ndarray, index: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Each column's (minima, maxima) over the rows `index`, in `dtype`, gathered a slice of rows at a time."""
    low = high = None
    for start in range(0, len(index), SLICE_ROWS):
        chunk = X[index[start:start + SLICE_ROWS]].astype(dtype, copy=False)
        low = chunk.min(axis=0) if low is None else np.minimum(low, chunk.min(axis=0))
        high = chunk.max(axis=0) if high is None else np.maximum(high, chunk.max(axis=0))
    return low, high


def _standard_by_columns(X: np.ndarray, index: np.ndarray) -> Affine:
    """`Affine.fit("standard", X[index])`, fitted on the rows' copy of SLICE_COLUMNS columns at a time.

    Every statistic StandardScaler takes is a column's own (sums down the column in row order, its
    constant-feature test), so the columns' figures are those of one fit on all of them. A block is never
    one column wide unless X is: NumPy sums a lone contiguous column pairwise, not row by row.
    """
    from sklearn.preprocessing import StandardScaler

    n = X.shape[1]
    starts = list(range(0, n, SLICE_COLUMNS))
    if n > 1 and n % SLICE_COLUMNS == 1:
        starts.pop()  # the last block takes the odd column
    means, scales = [], []
    for start, stop in zip(starts, [*starts[1:], n], strict=True):
        scaler = StandardScaler().fit(np.ascontiguousarray(X[index, start:stop]))
        means.append(scaler.mean_)
        scales.append(scaler.scale_)
    mean, scale = np.concatenate(means), np.concatenate(scales)
    return Affine(1.0 / scale, -mean / scale)


def scaled_rows(preprocessor: Preprocessor, X: np.ndarray, index: np.ndarray | None = None) -> np.ndarray:
    """`preprocessor.transform(X[index])` of an unnamed array (None: every row) into one float32 buffer, a slice
    of rows at a time."""
    n = len(X) if index is None else len(index)
    out = np.empty((n, X.shape[1]), dtype=np.float32)
    for start in range(0, n, SLICE_ROWS):
        stop = start + SLICE_ROWS
        preprocessor.scale.apply(X[start:stop] if index is None else X[index[start:stop]], out[start:stop])
    return out


def rows_range(X: np.ndarray, index: np.ndarray) -> tuple[float, float]:
    """(min, max) of the rows `index` of an array, a slice at a time."""
    low, high = _column_ranges(X, index, X.dtype)
    return float(low.min()), float(high.max())
