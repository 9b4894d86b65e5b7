"""Datasets: scikit-learn's bundled sets and the user's files (CSV, .npz, MNIST IDX), loaded and checked.

Nothing downloads. The test split is held behind `Splits.test()`, which counts its reads, so a
run can show that the test data was touched once, by the final evaluation.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from framework.model import ROW_CHUNK

from .columns import split_table
from .errors import UserError
from .preprocess import NUMERIC
from .schema import BUILTIN_DATASETS

FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass
class Dataset:
    """Raw features and targets as loaded, before any split or scaling.

    `X` is an array of numbers (built-in sets, .npz, MNIST: features by position) or a DataFrame of named
    columns (a CSV), whose `roles` say which are numeric and which categorical.
    """

    name: str
    X: np.ndarray | pd.DataFrame
    y: np.ndarray  # class indices 0..k-1 (classification) or float values (regression)
    task: str  # "classification" | "regression"
    classes: list = field(default_factory=list)  # original label of each class index
    image_shape: tuple[int, int] | None = None  # (8, 8) for digits, (28, 28) for MNIST
    test: tuple[np.ndarray, np.ndarray] | None = None  # a test split the source already fixes
    roles: dict[str, str] | None = None  # a table's columns: numeric | categorical
    notes: list[str] = field(default_factory=list)  # what loading noticed (dropped columns, rows left out)
    label: str = ""  # a table's label column
    source_rows: np.ndarray | None = None  # each row's position in the file (None: the same as its own)


# ----------------------------------------------------------------------------- loading
BUNDLED_CSV = {"iris": "iris.csv", "wine": "wine_data.csv", "breast_cancer": "breast_cancer.csv"}


def _bundled_file(name: str) -> Path | None:
    """The path of a data file scikit-learn bundles, found without importing scikit-learn (about a second with
    scipy: the built-in sets need none of it); None where this scikit-learn version keeps it elsewhere."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "datasets" / "data" / name
        if path.is_file():
            return path
    return None


def _bundled(name: str) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """(data, target, class names) of a built-in classification set, read from scikit-learn's bundled file as
    its `load_<name>` reads it (equality is tested); None when the file is not there."""
    if name == "digits":
        path = _bundled_file("digits.csv.gz")
        if path is None:
            return None
        with gzip.open(path, mode="rt", encoding="utf-8") as f:
            table = np.loadtxt(f, delimiter=",")
        return table[:, :-1], table[:, -1].astype(np.int64), [str(c) for c in range(10)]
    path = _bundled_file(BUNDLED_CSV.get(name, ""))
    if path is None:
        return None
    with path.open(encoding="utf-8") as f:  # header: n_samples, n_features, class names; then features, class
        names = f.readline().strip().split(",")[2:]
        table = np.loadtxt(f, delimiter=",", ndmin=2)
    return table[:, :-1], table[:, -1].astype(np.int64), names


def _builtin(name: str) -> Dataset:
    if (bundled := _bundled(name)) is not None:
        data, target, classes = bundled
        return Dataset(name, data, target, "classification", classes, (8, 8) if name == "digits" else None)
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    if name == "diabetes":
        return Dataset(name, bunch.data, bunch.target.astype(np.float64), "regression")
    classes = [str(c) for c in getattr(bunch, "target_names", np.unique(bunch.target))]
    shape = (8, 8) if name == "digits" else None
    return Dataset(name, bunch.data, bunch.target.astype(np.int64), "classification", classes, shape)


def _encode_labels(y: np.ndarray, task: str, source: str) -> tuple[np.ndarray, str, list]:
    """Resolve the task and turn class labels into indices 0..k-1 (keeping the original labels)."""
    numeric = y.dtype.kind in "iubf"
    if numeric and y.dtype.kind == "f" and not np.isfinite(y).all():
        raise UserError(f"data: {source} has missing or infinite target values")
    whole = numeric and (y.dtype.kind != "f" or bool(np.all(y == np.round(y))))
    if task == "auto":
        task = "classification" if (not numeric or whole) else "regression"
    if task == "regression":
        if not numeric:
            raise UserError(f"data: {source} targets must be numbers for regression, got {y.dtype}")
        return y.astype(np.float64), task, []
    classes, index = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise UserError(f"data: {source} has a single class {classes.tolist()!r}; expected at least 2")
    labels = [str(c.item()) if hasattr(c, "item") else str(c) for c in classes]
    return index.astype(np.int64), task, labels


def _load_csv(path: Path, target: str, task: str, options: dict) -> Dataset:
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise UserError(f"data: cannot read {path} as CSV: {exc}") from None
    return load_frame(frame, path.stem, str(path), target, task, first_line=2, **options)


def load_frame(frame: pd.DataFrame, name: str, source: str, target: str = "", task: str = "auto",
               first_line: int = 0, categorical=(), drop=(), missing: str = "impute") -> Dataset:
    """A table (a CSV read by pandas, or a DataFrame from Python) as a Dataset of named columns.

    `first_line` numbers rows as the file's lines in messages (2 for a CSV with a header; 0: by position).
    """
    table = split_table(frame, source, target, categorical, drop, missing)
    numeric = [column for column, role in table.roles.items() if role == NUMERIC]
    check_features(table.features[numeric].to_numpy(dtype=np.float64), source, numeric, first_line=first_line,
                   allow_missing=missing == "impute")
    y, task, classes = _encode_labels(table.label.to_numpy(), task, source)
    return Dataset(name, table.features, y, task, classes, roles=table.roles, notes=table.notes,
                   label=str(table.label.name), source_rows=table.source_rows)


def _load_npz(path: Path, task: str) -> Dataset:
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):  # a .npy (one array) under an .npz name
            raise ValueError("it holds a single array (a .npy file?), not named arrays")
        with data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"data: cannot read {path} as .npz: {exc}") from None
    if {"X", "y"} <= arrays.keys():
        X, y, test = arrays["X"], arrays["y"], None
    elif {"x_train", "y_train", "x_test", "y_test"} <= arrays.keys():
        X, y, test = arrays["x_train"], arrays["y_train"], (arrays["x_test"], arrays["y_test"])
    else:
        raise UserError(f"data: {path} must hold arrays X and y, or x_train, y_train, x_test, y_test; "
                        f"it holds {', '.join(arrays) or 'nothing'}")
    return _from_arrays(path.stem, X, y, test, task, str(path))


def _read_idx(path: Path) -> np.ndarray:
    """One MNIST IDX file (optionally gzipped): unsigned bytes with a big-endian shape header."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = bytearray(f.read())  # writable, so the split can move its rows in place rather than copy them
    except (OSError, EOFError) as exc:
        raise UserError(f"data: cannot read {path}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise UserError(f"data: {path} is not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise UserError(f"data: {path} is truncated: its header declares {ndim} dimensions but ends before them")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != math.prod(shape):  # Python ints: a hostile header cannot overflow the product
        raise UserError(f"data: {path} is truncated or damaged: its header says {shape} "
                        f"({math.prod(shape):,} bytes), the file holds {body.size:,} bytes of data")
    return body.reshape(shape)


def _find_idx(folder: Path, prefix: str, kind: str) -> Path:
    matches = sorted(folder.glob(f"{prefix}-{kind}*"))
    if not matches:
        raise UserError(f"data: {folder} has no {prefix}-{kind}-idx*-ubyte[.gz] file; expected the four MNIST "
                        "files (train-images, train-labels, t10k-images, t10k-labels)")
    return matches[0]


def _load_mnist_folder(folder: Path, task: str) -> Dataset:
    X = _read_idx(_find_idx(folder, "train", "images"))
    y = _read_idx(_find_idx(folder, "train", "labels"))
    X_test = _read_idx(_find_idx(folder, "t10k", "images"))
    y_test = _read_idx(_find_idx(folder, "t10k", "labels"))
    return _from_arrays(folder.name, X, y, (X_test, y_test), task, str(folder))


def _from_arrays(name: str, X, y, test, task: str, source: str) -> Dataset:
    """A Dataset from arrays: images (n, h, w) are flattened; labels encoded; a given test split kept."""
    X, y = np.asarray(X), np.asarray(y).reshape(-1)
    image_shape = tuple(X.shape[1:]) if X.ndim == 3 else None
    X = X.reshape(len(X), -1) if X.ndim >= 2 else X
    if X.ndim != 2 or X.dtype.kind not in "iubf":
        raise UserError(f"data: {source} features must be a numeric 2-D array (or 3-D images), "
                        f"got shape {X.shape}, dtype {X.dtype}")
    if len(X) != len(y) or len(X) < 2:
        raise UserError(f"data: {source} has {len(X)} rows of features but {len(y)} targets")
    check_features(X, source)
    if test is not None:
        X_test, y_test = np.asarray(test[0]), np.asarray(test[1]).reshape(-1)
        X_test = X_test.reshape(len(X_test), -1)
        check_features(X_test, f"{source} (test split)")
        if X_test.shape[1] != X.shape[1] or len(X_test) != len(y_test):
            raise UserError(f"data: {source} test split has shape {X_test.shape} with {len(y_test)} targets; "
                            f"expected {X.shape[1]} features and one target per row")
        y_all, task, classes = _encode_labels(np.concatenate([y, y_test]), task, source)
        y, test = y_all[: len(y)], (X_test, y_all[len(y):])
    else:
        y, task, classes = _encode_labels(y, task, source)
    return Dataset(name, X, y, task, classes, image_shape, test)


def check_features(X: np.ndarray, source: str, names: list[str] | None = None, first_line: int = 0,
                   allow_missing: bool = False) -> None:
    """Refuse NaN (unless `allow_missing`: a table's gaps are imputed), inf and values beyond float32's range
    (the network computes in float32), naming the first such cell: row `first_line + i` of the file
    (0 = the array's own row index), column name or position."""
    if X.dtype.kind not in "fc":
        return  # integers and booleans are always finite and far inside float32's range
    for start in range(0, len(X), ROW_CHUNK):  # a slice at a time: no full-size mask
        block = np.abs(X[start:start + ROW_CHUNK])
        bad = ~(block <= FLOAT32_MAX)  # NaN compares false, so it is caught too
        if allow_missing:
            bad &= ~np.isnan(block)
        if bad.any():
            row, column = (int(i) for i in np.argwhere(bad)[0])
            value = float(X[start + row, column])
            what = "missing (NaN)" if np.isnan(value) else "infinite" if np.isinf(value) else \
                "beyond float32's range (about ±3.4e38)"
            where = f"line {first_line + start + row}" if first_line else f"row {start + row}"
            name = f"column {names[column]!r}" if names else f"column {column}"
            raise UserError(f"data: {source} {where}, {name}: {value:g} is {what}; expected finite numbers "
                            "within float32's range (the network computes in float32)")


def load_dataset(spec: str, target: str = "", task: str = "auto", categorical=(), drop=(),
                 missing: str = "impute") -> Dataset:
    """Load a built-in set by name, or a .csv, .npz or MNIST IDX folder by path.

    `target`, `categorical` and `drop` name a CSV's columns; `missing` says what a CSV's gaps become.
    """
    path = Path(spec).expanduser()
    for key, value in (("target", target), ("categorical", categorical), ("drop", drop)):
        if value and (spec in BUILTIN_DATASETS or path.suffix.lower() != ".csv"):
            raise UserError(f"data: data.{key} = {value!r} applies to a CSV file's columns, but {spec!r} is not a "
                            f"CSV file (its features and targets are fixed); leave data.{key} empty")
    if spec in BUILTIN_DATASETS:
        dataset = _builtin(spec)
        if task not in ("auto", dataset.task):
            raise UserError(f"data: {spec} is a {dataset.task} dataset, but data.task = {task!r}")
        return dataset
    if not path.exists():
        raise UserError(f"data: dataset {spec!r} is neither a built-in ({', '.join(BUILTIN_DATASETS)}) "
                        "nor an existing file or folder")
    if path.is_dir():
        return _load_mnist_folder(path, task)
    if path.suffix.lower() == ".csv":
        return _load_csv(path, target, task, {"categorical": categorical, "drop": drop, "missing": missing})
    if path.suffix.lower() == ".npz":
        return _load_npz(path, task)
    raise UserError(f"data: {path} has an unknown type; expected a .csv, a .npz or a folder of MNIST IDX files")


def fingerprint(*arrays) -> str:
    """A short hash of arrays' (or tables') shapes, types and values: identifies the data a trial saw."""
    digest = hashlib.sha256()
    for a in arrays:
        if isinstance(a, pd.DataFrame):
            digest.update(f"table{a.shape}".encode())
            for name, column in a.items():
                numbers = column.dtype.kind in "biuf"
                digest.update(f"{name}:{column.dtype}".encode())
                digest.update(column.to_numpy(dtype=np.float64).tobytes() if numbers else
                              "\x1f".join(map(str, column.tolist())).encode("utf-8", "surrogatepass"))
            continue
        a = np.ascontiguousarray(a)
        digest.update(f"{a.shape}{a.dtype}".encode())
        digest.update(a.data)
    return digest.hexdigest()[:16]
