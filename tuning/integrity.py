"""The folder's CSVs checked line by line, before anything counts them.

A damaged line (wrong number of cells, text where a number belongs, bytes that are not UTF-8) is named
by file and line; a line that exactly repeats an earlier one is counted once; trials whose epochs are
missing from history.csv are found, so the store can run them again. The store repairs what can be
repaired (it never guesses a damaged line's meaning); the folder's reader reports what it finds.
"""

from __future__ import annotations

import csv
import io
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .errors import TuningWarning, UserError, shown
from .formatting import is_number
from .trial import TrialStatus

# Columns that hold numbers (or nothing, for a failed trial's metrics) wherever they appear.
NUMERIC = {"config_id", "repeat", "fold", "seed", "rung", "epochs", "final_epoch", "epoch", "loss", "accuracy",
           "best_epoch", "fit_seconds", "seconds"}


def _numeric(column: str) -> bool:
    return column in NUMERIC or column.startswith(("val_", "best_val_"))
STATUSES = {str(status) for status in TrialStatus}


@dataclass
class Table:
    """A CSV as text: its header, its data rows, and the file line of each row (the header is line 1)."""

    path: Path
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    def column(self, name: str) -> int:
        return self.header.index(name)

    def keep(self, wanted) -> Table:
        """The rows for which `wanted(row)` holds."""
        kept = [(row, line) for row, line in zip(self.rows, self.lines) if wanted(row)]
        return Table(self.path, self.header, [r for r, _ in kept], [line for _, line in kept])


def read_table(path: Path, remedy: str) -> Table:
    """The CSV at `path` as text rows; a file that is not UTF-8 text or not CSV is a UserError naming the line."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise UserError(f"{path} line {line} is damaged (bytes that are not UTF-8 text); {remedy}") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    table = Table(path, [])
    try:
        for row in reader:
            if not table.header and not table.rows:
                table.header = row
            else:
                table.rows.append(row)
                table.lines.append(reader.line_num)
    except csv.Error as exc:
        raise UserError(f"{path} line {reader.line_num} is damaged ({exc}); {remedy}") from None
    return table


def check_table(table: Table, columns: list[str], remedy: str) -> None:
    """Every row has one cell per column, a number (or nothing) where a number belongs, a known status."""
    if table.header != columns:
        raise UserError(f"{table.path} has columns {shown(table.header, 200)}, expected {columns}: it belongs to "
                        "another experiment; use force=True to replace it or choose another out= folder")
    numeric = [i for i, name in enumerate(columns) if _numeric(name)]
    status = columns.index("status") if "status" in columns else None
    for row, line in zip(table.rows, table.lines):
        if len(row) != len(columns):
            raise UserError(f"{table.path} line {line} is damaged ({len(row)} cells, expected {len(columns)}); "
                            f"{remedy}")
        for i in numeric:
            if row[i] and not is_number(row[i]):
                raise UserError(f"{table.path} line {line}, column {columns[i]}: {shown(row[i])} is not a number; "
                                f"{remedy}")
        if status is not None and row[status] not in STATUSES:
            raise UserError(f"{table.path} line {line}, column status: {shown(row[status])} is not one of "
                            f"{', '.join(sorted(STATUSES))}; {remedy}")


def without_repeats(table: Table, key: list[str], remedy: str) -> Table:
    """`table` with every exact repeat of an earlier line dropped (a warning says which); two different lines
    for the same key are a UserError, since which one is right cannot be known."""
    positions = [table.column(k) for k in key]
    seen: dict[tuple, tuple[list[str], int]] = {}
    repeats = []
    for row, line in zip(table.rows, table.lines):
        identity = tuple(row[i] for i in positions)
        if identity in seen:
            first, first_line = seen[identity]
            if row != first:
                raise UserError(f"{table.path} lines {first_line} and {line} both hold {'/'.join(identity)} with "
                                f"different values; {remedy}")
            repeats.append((line, first_line))
        else:
            seen[identity] = (row, line)
    if not repeats:
        return table
    warnings.warn(f"{table.path} repeats {len(repeats)} line(s) exactly (line {repeats[0][0]} repeats line "
                  f"{repeats[0][1]}); each is counted once", TuningWarning, stacklevel=2)
    dropped = {line for line, _ in repeats}
    return Table(table.path, table.header, [r for r, n in zip(table.rows, table.lines) if n not in dropped],
                 [n for n in table.lines if n not in dropped])


def incomplete(runs: Table, history: Table, key: list[str]) -> set[str]:
    """Keys ('id', or 'id/rung') of stored work whose epochs are not all in history.csv.

    A row's epochs are its `epochs` minus those of the same trial's rung before (0 without rungs).
    """
    counts = Counter("/".join(row[history.column(k)] for k in key) for row in history.rows)
    epochs, trial = runs.column("epochs"), runs.column("trial_id")
    rung = runs.column("rung") if "rung" in key else None
    ordered = sorted(runs.rows, key=lambda row: int(float(row[rung])) if rung is not None else 0)
    trained: dict[str, int] = {}  # epochs each trial had reached, rung by rung
    missing = set()
    for row in ordered:
        identity = "/".join(row[runs.column(k)] for k in key)
        total = int(float(row[epochs] or 0))
        if counts[identity] != total - trained.get(row[trial], 0):
            missing.add(identity)
        trained[row[trial]] = total
    return missing
