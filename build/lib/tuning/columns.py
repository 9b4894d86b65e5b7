"""A user's table read as a scikit-learn ColumnTransformer user would set it up: which column is the label,
which are row numbers (dropped), which features are numeric or categorical, what to do with gaps, and
which features identify the label (likely leaks).

Everything said about the table comes back as notes: one line each, shown by the run and in report.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import UserError
from .preprocess import CATEGORICAL, NUMERIC

MANY_CATEGORIES = 50  # a text column with more distinct values than this is probably an identifier or free text


@dataclass
class Table:
    """The features and label of a table, each feature's role, and what was noticed on the way."""

    features: pd.DataFrame
    label: pd.Series
    roles: dict[str, str]
    notes: list[str] = field(default_factory=list)
    source_rows: np.ndarray | None = None  # each row's position among the file's data rows (some may be left out)


def split_table(frame: pd.DataFrame, source: str, target: str = "", categorical=(), drop=(),
               missing: str = "impute") -> Table:
    """Split `frame` into features and label and decide each feature's role, refusing what cannot be used."""
    frame = frame.reset_index(drop=True)  # positions among the file's data rows, kept through what is left out
    notes: list[str] = []
    unknown = [name for name in [*drop, *categorical] if name not in frame.columns]
    if unknown:
        raise UserError(f"data: {source} has no column {unknown[0]!r} (named in data.drop or data.categorical); "
                        f"its columns are {', '.join(map(str, frame.columns))}")
    frame = frame.drop(columns=list(drop))
    frame, dropped = _drop_row_numbers(frame, keep={target, *categorical})
    notes += [f"column {name!r} is a row number, not a feature: dropped" for name in dropped]
    label = target or (frame.columns[0] if len(frame.columns) else "")
    if label not in frame.columns:
        raise UserError(f"data: {source} has no column {label!r}; columns are {', '.join(map(str, frame.columns))}")
    frame, rows_without_label = _with_label(frame, label, source, missing)
    if rows_without_label:
        notes.append(f"{rows_without_label} row(s) have no {label!r} (the label): left out")
    features = frame.drop(columns=[label])
    empty = [name for name in features.columns if features[name].isna().all()]
    features = features.drop(columns=empty)
    notes += [f"column {name!r} has no values: dropped" for name in empty]
    if features.shape[1] < 1 or len(features) < 2:
        raise UserError(f"data: {source} needs a label column and at least one feature column, and at least 2 "
                        f"rows; got {len(features)} rows and features {list(features.columns)}")
    features, label_values, removed = _gaps(features, frame[label], source, missing)
    if removed:
        notes.append(f"{removed} row(s) with missing values left out (data.missing = \"drop_rows\")")
    roles = {name: CATEGORICAL if name in categorical or not _is_number_column(features[name]) else NUMERIC
             for name in features.columns}
    notes += _many_categories(features, roles)
    return Table(features.reset_index(drop=True), label_values.reset_index(drop=True), roles, notes,
                 features.index.to_numpy())


def _is_number_column(column: pd.Series) -> bool:
    return column.dtype.kind in "iuf"  # booleans (kind "b") and text are categories


def _drop_row_numbers(frame: pd.DataFrame, keep: set) -> tuple[pd.DataFrame, list[str]]:
    """Columns that are row numbers: pandas' unnamed index column, or whole numbers 0..n-1 or 1..n."""
    n = len(frame)
    dropped = []
    for name in frame.columns:
        if name in keep:
            continue
        column = frame[name]
        if str(name).startswith("Unnamed: 0") or (column.dtype.kind in "iu" and n > 2 and (
                np.array_equal(column.to_numpy(), np.arange(n)) or np.array_equal(column.to_numpy(),
                                                                                    np.arange(1, n + 1)))):
            dropped.append(name)
    return frame.drop(columns=dropped), dropped


def _with_label(frame: pd.DataFrame, label: str, source: str, missing: str) -> tuple[pd.DataFrame, int]:
    """Rows without a label cannot be learned from: refused with data.missing = "error", else left out."""
    gaps = frame[label].isna()
    if gaps.any() and missing == "error":
        raise UserError(f"data: {source} column {label!r} (the label) has {int(gaps.sum())} missing values; "
                        "expected none (data.missing = \"error\")")
    return frame[~gaps], int(gaps.sum())


def _gaps(features: pd.DataFrame, label: pd.Series, source: str, missing: str):
    """Missing feature cells under data.missing: "impute" keeps them (the Preprocessor fills them), "drop_rows"
    leaves their rows out, "error" refuses them naming the column."""
    gaps = features.isna()
    if missing == "impute" or not gaps.any().any():
        return features, label, 0
    if missing == "error":
        name = gaps.sum().idxmax()
        raise UserError(f"data: {source} column {name!r} has {int(gaps[name].sum())} missing values; expected none "
                        "(data.missing = \"error\"; \"impute\" fills them, \"drop_rows\" leaves their rows out)")
    keep = ~gaps.any(axis=1)
    return features[keep], label[keep], int((~keep).sum())


def _many_categories(features: pd.DataFrame, roles: dict[str, str]) -> list[str]:
    notes = []
    for name, role in roles.items():
        distinct = features[name].nunique()
        if role == CATEGORICAL and distinct > MANY_CATEGORIES:
            notes.append(f"column {name!r} is text with {distinct} distinct values (an identifier, or numbers with a "
                         "typo?): it becomes as many one-hot features; data.drop = [...] leaves it out")
    return notes


def likely_leaks(features: pd.DataFrame, y: np.ndarray, classification: bool) -> list[str]:
    """Features that give the label away on these rows: one value per class, or a perfect predictor alone."""
    leaks = []
    for name in features.columns:
        column = features[name]
        if classification and _predicts_classes(column, y):
            leaks.append(f"column {name!r} predicts the label perfectly by itself: a likely leak (is it the label "
                         "in another form, or known only after it?)")
        elif not classification and _is_number_column(column) and _tracks(column, y):
            leaks.append(f"column {name!r} is the target up to a linear map: a likely leak")
    return leaks


def _predicts_classes(column: pd.Series, y: np.ndarray) -> bool:
    """One class per value (for a category no identifier could fake), or per interval of a sorted number."""
    known = column.notna().to_numpy()
    values, labels = column[known], y[known]
    if len(labels) < 10 or len(np.unique(labels)) < 2:
        return False
    if not _is_number_column(column):
        groups = pd.Series(labels).groupby(values.astype(str).to_numpy()).nunique()
        return len(groups) < len(labels) / 2 and bool((groups == 1).all())
    order = np.argsort(values.to_numpy(), kind="stable")
    sorted_values, sorted_labels = values.to_numpy()[order], labels[order]
    changes = np.flatnonzero(sorted_labels[1:] != sorted_labels[:-1])
    # each class one run of sorted values, and no tie straddles two classes
    return len(changes) == len(np.unique(labels)) - 1 and not np.any(sorted_values[changes] == sorted_values[changes
                                                                                                          + 1])


def _tracks(column: pd.Series, y: np.ndarray) -> bool:
    values = column.to_numpy(dtype=np.float64)
    known = ~np.isnan(values)
    if known.sum() < 10 or np.std(values[known]) == 0 or np.std(y[known]) == 0:
        return False
    return bool(abs(np.corrcoef(values[known], y[known])[0, 1]) > 0.9999)
