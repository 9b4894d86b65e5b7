"""Preprocessing fitted on training rows only, as plain numbers: one `Preprocessor` for training and predict.

A table (named columns) has numeric columns imputed with their median (plus a 0/1 missing-indicator
column where the training rows had gaps) and scaled, and categorical ones imputed with their most
frequent value and one-hot encoded over the categories of the training rows (an unknown category
encodes as all zeros, with a warning). The statistics come from scikit-learn's SimpleImputer,
MinMaxScaler / StandardScaler and OneHotEncoder; the transform is this module's own, from the same
numbers that model.npz stores as JSON, so what `predict` applies is exactly what training applied.
An unnamed array (digits, .npz, MNIST) is only scaled. Regression targets are standardised.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from framework.model import ROW_CHUNK

from .errors import TuningWarning, UserError

NUMERIC, CATEGORICAL = "numeric", "categorical"
MISSING_MODES = ("impute", "drop_rows", "error")


@dataclass
class Affine:
    """Feature scaling as `x * mul + add`: MinMaxScaler and StandardScaler both reduce to it."""

    mul: np.ndarray
    add: np.ndarray

    @classmethod
    def fit(cls, kind: str, X: np.ndarray) -> Affine:
        """Fit the named scaler (minmax, standard, none) on training rows: scikit-learn's MinMaxScaler /
        StandardScaler (min-max by `minmax_scale`, its arithmetic without importing scikit-learn)."""
        n = X.shape[1]
        if kind == "none" or n == 0:
            return cls(np.ones(n), np.zeros(n))
        if kind == "minmax" and (own := minmax_scale(X)) is not None:
            return cls(*own)
        from sklearn.preprocessing import MinMaxScaler, StandardScaler

        if kind == "minmax":
            scaler = MinMaxScaler().fit(X)
            return cls(scaler.scale_.copy(), scaler.min_.copy())
        scaler = StandardScaler().fit(X)
        return cls(1.0 / scaler.scale_, -scaler.mean_ / scaler.scale_)

    def apply(self, X: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Scaled float32 rows, computed in float64 a slice of rows at a time (no full-size float64 copy)."""
        X = np.asarray(X)
        out = np.empty(X.shape, dtype=np.float32) if out is None else out
        for start in range(0, len(X), ROW_CHUNK):
            rows = X[start:start + ROW_CHUNK].astype(np.float64) * self.mul
            rows += self.add
            out[start:start + ROW_CHUNK] = rows
        return out

    def to_dict(self) -> dict:
        return {"mul": self.mul.tolist(), "add": self.add.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> Affine:
        return cls(np.asarray(d["mul"], dtype=np.float64), np.asarray(d["add"], dtype=np.float64))


def minmax_scale(X: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(scale_, min_) of `MinMaxScaler().fit(X)`, the same numbers by the same arithmetic in X's float type
    (float64 for integers), without importing scikit-learn (with scipy, about a second); None where scikit-learn
    should judge the input itself (not a numeric 2-D array, no rows, a column with NaN or inf). Equality with
    scikit-learn's is tested."""
    if not isinstance(X, np.ndarray) or X.ndim != 2 or len(X) == 0 or X.dtype.kind not in "biuf":
        return None
    X = X.astype(minmax_dtype(X.dtype), copy=False)
    return minmax_from_range(X.min(axis=0), X.max(axis=0))


def minmax_dtype(dtype: np.dtype) -> np.dtype:
    """The float type MinMaxScaler computes in for input of `dtype`: its own float type, float64 for the rest."""
    return dtype if dtype in (np.float64, np.float32, np.float16) else np.dtype(np.float64)


def minmax_from_range(data_min: np.ndarray, data_max: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """MinMaxScaler's (scale_, min_) from the columns' minima and maxima (None when one is not finite)."""
    if not (np.isfinite(data_min).all() and np.isfinite(data_max).all()):
        return None
    low, high = np.asarray(0, dtype=data_min.dtype), np.asarray(1, dtype=data_min.dtype)
    data_range = data_max - data_min
    data_range[data_range < 10 * np.finfo(data_range.dtype).eps] = 1.0  # constant columns: scale 1
    scale = (high - low) / data_range
    return scale, low - data_min * scale


@dataclass
class TargetScale:
    """Regression targets are standardised for training (fit on training rows) and mapped back for output."""

    mean: float = 0.0
    std: float = 1.0

    @classmethod
    def fit(cls, y: np.ndarray) -> TargetScale:
        std = float(np.std(y))
        return cls(float(np.mean(y)), std if std > 0 else 1.0)

    def apply(self, y: np.ndarray) -> np.ndarray:
        return ((np.asarray(y, dtype=np.float64) - self.mean) / self.std).astype(np.float32)

    def invert(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=np.float64) * self.std + self.mean


def category_text(values) -> np.ndarray:
    """Values of a categorical column as the text they are matched by: 1, 1.0 and '1' read alike from any file
    (a column with gaps reads as floats), booleans as True/False; missing values stay None.

    Each distinct value is turned into text once (pandas.factorize), not each row: tables have many rows
    and few categories. (Python's True == 1, so an object column mixing True and 1 reads both as one.)
    """
    import pandas as pd

    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    texts = np.array([*(_category(v) for v in uniques), None], dtype=object)
    return texts[codes]  # code -1 (missing) picks the None at the end


def _category(value) -> str:
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return str(value)


@dataclass
class Column:
    """One input column as fitted: numeric (median `fill`, a missing `indicator` column when the training rows
    had gaps) or categorical (most frequent `fill`, one output column per training category)."""

    name: str
    kind: str
    fill: float | str | None = None
    indicator: bool = False
    categories: list[str] = field(default_factory=list)

    @property
    def outputs(self) -> list[str]:
        """The names of the features this column becomes."""
        if self.kind == CATEGORICAL:
            return [f"{self.name}={c}" for c in self.categories]
        return [self.name, *([f"{self.name} (missing)"] if self.indicator else [])]


def is_table(X) -> bool:
    """Whether features are a table of named columns (a pandas DataFrame) rather than an unnamed array."""
    return hasattr(X, "columns") and hasattr(X, "iloc")


@dataclass
class Preprocessor:
    """The fitted preprocessing of one set of training rows; `transform` turns raw rows into network input.

    `columns` is None for an unnamed array: then rows are only scaled, by position. `impute` says whether
    missing cells are filled (data.missing = "impute") or refused.
    """

    columns: list[Column] | None
    n_inputs: int
    scale: Affine  # over the numeric columns of a table (not indicators, not one-hot), every feature of an array
    impute: bool = True

    @classmethod
    def fit(cls, X, scale: str, roles: dict[str, str] | None = None, missing: str = "impute") -> Preprocessor:
        """Learn the preprocessing of training rows `X` (a DataFrame with `roles` per column, or an array)."""
        if not is_table(X):
            return cls(None, X.shape[1], Affine.fit(scale, np.asarray(X)), impute=False)
        numeric = [name for name in X.columns if roles[name] == NUMERIC]
        columns = {c.name: c for c in [*_fit_numeric(X, numeric), *_fit_categorical(X, [n for n in X.columns
                                                                                        if n not in numeric])]}
        filled = X[numeric].to_numpy(dtype=np.float64, copy=True)
        _fill(filled, [columns[n].fill for n in numeric])
        return cls([columns[name] for name in X.columns], len(X.columns), Affine.fit(scale, filled),
                   missing == "impute")

    @property
    def feature_names(self) -> list[str]:
        """The network's input features, in order: a table's columns as encoded; an array's positions."""
        if self.columns is None:
            return [str(i) for i in range(self.n_inputs)]
        return [name for column in self.columns for name in column.outputs]

    @property
    def n_features(self) -> int:
        return len(self.feature_names) if self.columns is not None else self.n_inputs

    def transform(self, X, source: str = "rows") -> np.ndarray:
        """Raw rows -> the network's float32 input. A table must hold every fitted column (others are ignored)."""
        if self.columns is None:
            return self.scale.apply(np.asarray(X))
        out = np.zeros((len(X), self.n_features), dtype=np.float32)
        offsets = np.cumsum([0, *(len(c.outputs) for c in self.columns)])
        numeric = [(i, c) for i, c in enumerate(self.columns) if c.kind == NUMERIC]
        if numeric:
            values = self._numbers(X, [c for _, c in numeric], source)
            missing = _fill(values, [c.fill for _, c in numeric])
            scaled = self.scale.apply(values)
            for j, (i, column) in enumerate(numeric):
                out[:, offsets[i]] = scaled[:, j]
                if column.indicator:
                    out[:, offsets[i] + 1] = missing[:, j]
        for i, column in enumerate(self.columns):
            if column.kind == CATEGORICAL:
                self._one_hot(X[column.name], column, out[:, offsets[i]:offsets[i + 1]], source)
        return out

    def _numbers(self, X, columns: list[Column], source: str) -> np.ndarray:
        import pandas as pd

        values = np.empty((len(X), len(columns)), dtype=np.float64)
        for j, column in enumerate(columns):
            parsed = pd.to_numeric(X[column.name], errors="coerce").to_numpy(dtype=np.float64)
            bad = np.isnan(parsed) & X[column.name].notna().to_numpy()
            if bad.any():
                row = int(np.argmax(bad))
                raise UserError(f"{_where(X, row, source)}, column {column.name!r}: {X[column.name].iloc[row]!r} is "
                                "not a number; the model was trained on numbers in this column")
            values[:, j] = parsed
        self._refuse_gaps(X, np.isnan(values), [c.name for c in columns], source)
        return values

    def _refuse_gaps(self, X, missing: np.ndarray, names: list[str], source: str) -> None:
        if not self.impute and missing.any():
            row, j = (int(i) for i in np.argwhere(missing)[0])
            raise UserError(f"{_where(X, row, source)}, column {names[j]!r} is missing; this model was trained "
                            "with data.missing other than \"impute\", so it fills no gaps")

    def input_column(self, feature: int) -> str:
        """The input column behind network input `feature` (a one-hot or indicator feature: its column)."""
        if self.columns is None:
            return str(feature)
        ends = np.cumsum([len(c.outputs) for c in self.columns])
        return self.columns[int(np.searchsorted(ends, feature, side="right"))].name

    def _one_hot(self, values, column: Column, out: np.ndarray, source: str) -> None:
        import pandas as pd

        text = category_text(values)
        missing = text == None  # noqa: E711 (an element-wise test on an object array)
        self._refuse_gaps(values, missing[:, None], [column.name], source)
        text[missing] = column.fill
        codes = pd.Categorical(text, categories=column.categories).codes.astype(np.int64)  # -1: not a category
        unknown = codes < 0
        if unknown.any():
            seen = sorted(set(text[unknown]))
            warnings.warn(f"{source}: column {column.name!r} has {int(unknown.sum())} value(s) unseen in training "
                          f"({', '.join(map(repr, seen[:3]))}{', ...' if len(seen) > 3 else ''}): encoded as none of "
                          "its categories", TuningWarning, stacklevel=3)
        rows = np.flatnonzero(~unknown)
        out[rows, codes[rows]] = 1.0

    def to_dict(self) -> dict:
        """Plain JSON data: what model.npz stores."""
        return {"columns": None if self.columns is None else [vars(c) for c in self.columns],
                "n_inputs": self.n_inputs, "scale": self.scale.to_dict(), "impute": self.impute}

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessor:
        columns = None if d["columns"] is None else [Column(**c) for c in d["columns"]]
        return cls(columns, int(d["n_inputs"]), Affine.from_dict(d["scale"]), bool(d["impute"]))


def _where(X, row: int, source: str) -> str:
    """A row as its reader finds it: by the table's index ('line 7' of a CSV read for predict), else its position."""
    label = X.index.name or "row"
    return f"{source} {label} {X.index[row]}"


def _fit_numeric(X, names: list[str]) -> list[Column]:
    """Median and missing indicator of each numeric column (scikit-learn's SimpleImputer)."""
    if not names:
        return []
    from sklearn.impute import SimpleImputer

    imputer = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
    imputer.fit(X[names].to_numpy(dtype=np.float64))
    gaps = set(imputer.indicator_.features_) if imputer.indicator_ is not None else set()
    return [Column(name, NUMERIC, float(imputer.statistics_[j]), j in gaps) for j, name in enumerate(names)]


def _fit_categorical(X, names: list[str]) -> list[Column]:
    """Most frequent value and categories of each categorical column (SimpleImputer, OneHotEncoder)."""
    if not names:
        return []
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    text = np.column_stack([category_text(X[name]) for name in names])
    text[text == None] = np.nan  # noqa: E711 (SimpleImputer's missing marker for object arrays)
    imputer = SimpleImputer(strategy="most_frequent").fit(text)
    encoder = OneHotEncoder(handle_unknown="ignore").fit(imputer.transform(text))
    return [Column(name, CATEGORICAL, str(imputer.statistics_[j]), False, [str(c) for c in encoder.categories_[j]])
            for j, name in enumerate(names)]


def _fill(values: np.ndarray, fills: list[float]) -> np.ndarray:
    """Fill the NaNs of each column of `values` in place with that column's value; returns where they were."""
    missing = np.isnan(values)
    values[missing] = np.take(np.asarray(fills, dtype=np.float64), np.nonzero(missing)[1])
    return missing
