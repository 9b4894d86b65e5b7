"""What `predict` reads besides images: rows of raw features from a .csv or .npy, every cell checked.

A CSV's header is never guessed from its values: every cell is read as text, the first row is a
header only when no cell of it is a number (or its cells are 0..n-1, pandas' names for unnamed
columns), and every data cell must be a finite number. No row is ever dropped: blank lines at
the end of a file are not rows, and a blank line between rows is an error.
"""

from __future__ import annotations

import csv
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from framework.archive import ArchiveError, read_npy

from .errors import TuningWarning, UserError
from .formatting import is_number

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")


def _short(text: str, limit: int = 40) -> str:
    """repr(text), cut to `limit` characters: a cell can be long."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def _where(source: str, line: int, j: int, names: list[str] | None) -> str:
    """A CSV cell as a person finds it: the file's line (1-based), the column's position and its name."""
    return f"{source} line {line}, column {j + 1}" + (f" ({_short(names[j])})" if names else "")


@dataclass
class Rows:
    """Raw feature rows as read, and where each came from, so that an error can name the cell."""

    values: np.ndarray  # (n, k) float64
    source: str  # the file, for messages
    names: list[str] | None = None  # a CSV header's column names (a later match by name builds on them)
    lines: list[int] | None = None  # the file line of each row of a CSV

    def row(self, i: int) -> str:
        return f"{self.source} line {self.lines[i]}" if self.lines else f"{self.source} row {i}"

    def cell(self, i: int, j: int) -> str:
        if not self.lines:
            return f"{self.source} at index [{i}, {j}]"  # .npy rows: numpy's 0-based index
        return _where(self.source, self.lines[i], j, self.names)


def read_table(path: Path, columns: list[str]):
    """Rows of a model trained on named columns: a CSV whose header names them, matched by name.

    Order does not matter; other columns (the label among them) are left out with a warning; a missing
    one is an error naming it. Cells are read as training read them (pandas), gaps included; the rows
    are numbered by their file lines, so an error names the line.
    """
    import pandas as pd

    records = _csv_records(path)
    if not records or not set(columns) & set(records[0][1]):
        raise UserError(f"predict: {path} has no header naming the model's columns; expected a first row with "
                        f"{', '.join(map(repr, columns[:5]))}{', ...' if len(columns) > 5 else ''}")
    try:
        frame = pd.read_csv(path, encoding="utf-8-sig")
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise UserError(f"predict: cannot read {path} as CSV: {exc}") from None
    frame.index = pd.Index([line for line, _ in records[1:]], name="line")
    frame.attrs["source"] = str(path)
    return select_columns(frame, columns, str(path))


def select_columns(frame, columns: list[str], source: str):
    """`frame`'s columns the model was trained on, by name; a missing one is an error, others are left out."""
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise UserError(f"predict: {source} lacks the column(s) {', '.join(map(repr, missing))} the model was "
                        "trained on; expected every one (in any order)")
    extra = [str(name) for name in frame.columns if name not in columns]
    if extra:
        warnings.warn(f"{source}: column(s) {', '.join(map(repr, extra[:5]))}{', ...' if len(extra) > 5 else ''} "
                      "are not the model's: left out", TuningWarning, stacklevel=3)
    if frame.empty:
        raise UserError(f"predict: {source} holds no rows")
    selected = frame[columns]
    selected.attrs["source"] = source
    return selected


def read_rows(path: Path, n_features: int) -> Rows:
    """Raw feature rows from a .csv (with or without a header row) or a .npy file, every cell a finite number."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path, n_features)
    if suffix != ".npy":
        raise UserError(f"predict: {path} has an unknown type; expected .csv, .npy or an image "
                        f"({', '.join(IMAGE_SUFFIXES)})")
    values = _read_npy(path)
    values = values.reshape(1, -1) if values.ndim < 2 else values
    if values.size == 0:
        raise UserError(f"predict: {path} holds no rows; expected rows of {n_features} features")
    if values.ndim != 2 or values.shape[1] != n_features:
        raise UserError(f"predict: the model expects rows of {n_features} features, "
                        f"{path} has shape {tuple(values.shape)}")
    rows = Rows(values.astype(np.float64), str(path))
    finite = np.isfinite(rows.values)
    if not finite.all():
        i, j = (int(k) for k in np.argwhere(~finite)[0])
        raise UserError(f"predict: {rows.cell(i, j)}: {rows.values[i, j]} is not a finite number; "
                        "expected a finite number in every cell")
    return rows


def _read_npy(path: Path) -> np.ndarray:
    """The array in a .npy file, its header checked against the file's size before anything is allocated."""
    try:
        with open(path, "rb") as f:
            return read_npy(f, os.fstat(f.fileno()).st_size, path.name, "biuf")
    except (OSError, ArchiveError) as exc:
        raise UserError(f"predict: cannot read {path} as .npy: {exc}") from None


def _read_csv(path: Path, n_features: int) -> Rows:
    """Every cell of a CSV read as text; the first row is a header only when no cell of it is a number."""
    records = _csv_records(path)
    for line, cells in records:
        if len(cells) != n_features:
            raise UserError(f"predict: the model expects rows of {n_features} features, "
                            f"{path} line {line} has {len(cells)} cells")
    names = records[0][1] if records and _is_header(records[0][1]) else None
    records = records[1:] if names else records
    if not records:
        raise UserError(f"predict: {path} holds no rows; expected rows of {n_features} features")
    values = np.empty((len(records), n_features))
    for i, (line, cells) in enumerate(records):
        try:
            values[i] = [float(cell) for cell in cells]
        except ValueError:
            values[i] = np.nan  # the cell is found below
        if not np.isfinite(values[i]).all():
            j = next(j for j, cell in enumerate(cells) if not _is_finite_number(cell))
            what = "a finite number" if is_number(cells[j]) else "a number"
            raise UserError(f"predict: {_where(str(path), line, j, names)}: {_short(cells[j])} is not {what}; "
                            "expected a finite number in every cell")
    return Rows(values, str(path), names, [line for line, _ in records])


def _csv_records(path: Path) -> list[tuple[int, list[str]]]:
    """(line, cells) of each record; a blank line is refused unless only blank lines follow it."""
    records, blank = [], None
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            line = 1
            for cells in reader:
                if not cells:
                    blank = blank or line
                elif blank:
                    raise UserError(f"predict: {path} line {blank} is blank; expected a row of numbers")
                else:
                    records.append((line, cells))
                line = reader.line_num + 1
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"predict: cannot read {path} as CSV: {exc}") from None
    return records


def _is_finite_number(cell: str) -> bool:
    return is_number(cell) and bool(np.isfinite(float(cell)))


def _is_header(cells: list[str]) -> bool:
    """No cell is a number (and one is not blank), or the cells are 0..n-1: what pandas writes for unnamed columns."""
    if cells == [str(i) for i in range(len(cells))]:
        return True
    return any(cell.strip() for cell in cells) and not any(is_number(cell) for cell in cells)
