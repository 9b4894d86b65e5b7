"""The experiment folder: its file names, the CSV schemas, rows appended and flushed per trial, resume, lock.

Only the parent process writes. A trial's epoch rows go to history.csv before its row goes
to runs.csv, so a trial counts as stored once its runs.csv row is there; on open, a torn last
line (from a kill mid-write) is cut and epoch rows of trials without a runs row are dropped.
"""

from __future__ import annotations

import csv
import fcntl
import io
import math
import os
import socket
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import TuningWarning, UserError
from .files import atomic_open, naming
from .trial import TrialRecord, TrialSpec

RUNS_FILE, HISTORY_FILE, CONFIG_FILE, LOCK_FILE = "runs.csv", "history.csv", "config.toml", ".lock"
BEST_FILE, MODEL_FILE, REPORT_FILE, PLOTS_DIR = "best.json", "model.npz", "report.md", "plots"
PREDICTIONS_FILE = "test_predictions.csv"  # the final model on the test split: for the confusion matrix
RUNGS_FILE, CHECKPOINTS_DIR = "rungs.csv", "checkpoints"  # successive halving: its journal and saved states
DATA_FILE = "data.json"  # which data the trials saw: a resume on changed data is refused
IMPORTANCE_FILE = "importance.csv"  # each searched parameter's share of the validation score's variance
IMPORTANCE_SOURCE = ".importance-source"  # a digest of the files importance.csv was computed from: its cache key
SCRATCH_PREFIX = ".scratch-"  # memory-mapped copies of the data for local workers, removed after the run
DAMAGED = "delete that line (its trial runs again) or use force=True to start over (old files are moved aside)"
# Everything a run writes; moved aside together when force=True replaces an experiment.
OUTPUTS = (RUNS_FILE, HISTORY_FILE, CONFIG_FILE, DATA_FILE, BEST_FILE, MODEL_FILE, PREDICTIONS_FILE, REPORT_FILE,
           PLOTS_DIR, RUNGS_FILE, CHECKPOINTS_DIR, IMPORTANCE_FILE, IMPORTANCE_SOURCE)

@dataclass(frozen=True)
class Columns:
    """The CSV schemas of one experiment: its searched params, task, tracked validation metrics, and whether
    it halves (a rung column) and cross-validates (a fold column)."""

    params: list[str]
    task: str
    metrics: list[str]  # validation metrics besides the loss (objective.tracked_metrics)
    halving: bool = False
    folds: bool = False

    @property
    def logs(self) -> list[str]:
        """An epoch's logs: training loss (and accuracy), validation loss and metrics."""
        return ["loss", *(["accuracy"] if self.task == "classification" else []), "val_loss",
                *(f"val_{m}" for m in self.metrics)]

    @property
    def runs(self) -> list[str]:
        """runs.csv: identity (the fold under cross-validation), params, (rung reached), outcome, final and best
        epoch's metrics, time."""
        best = [f"best_{c}" for c in self.logs if c.startswith("val_")]
        return ["trial_id", "config_id", "repeat", *(["fold"] if self.folds else []), "seed", *self.params,
                *(["rung"] if self.halving else []), "status", "error", "epochs", "final_epoch", *self.logs,
                "best_epoch", *best, "fit_seconds"]

    @property
    def history(self) -> list[str]:
        """history.csv: one row per trial (and rung) and epoch, with the lr the epoch trained with."""
        return ["trial_id", *(["rung"] if self.halving else []), "epoch", *self.logs, "lr", "seconds"]


def runs_row(spec: TrialSpec, record: TrialRecord) -> dict:
    """A trial's runs.csv row: its identity, its params, (its rung) and its outcome."""
    rung = {} if spec.rung is None else {"rung": spec.rung}
    return {"trial_id": spec.trial_id, "config_id": spec.config_id, "repeat": spec.repeat, "fold": spec.fold,
            "seed": spec.seed, **spec.params, **rung, **record.outcome()}


def history_rows(spec: TrialSpec, record: TrialRecord) -> list[dict]:
    """A trial's history.csv rows, one per epoch it trained."""
    rung = {} if spec.rung is None else {"rung": spec.rung}
    return [{"trial_id": spec.trial_id, **rung, **row} for row in record.history]


def _cell(value) -> str:
    """CSV text for a value: floats at full precision (repr), NaN and None as empty cells."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):  # layer widths: 128-64, as the leaderboard and plots show them
        return "-".join(map(str, value))
    return str(value)


def _csv_line(values: Iterable) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([_cell(v) for v in values])
    return buffer.getvalue()


def _cut_torn_line(path: Path) -> None:
    """Drop a last line that has no newline: the remains of a write interrupted by a kill."""
    if not path.exists():
        return
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return (rows[0], rows[1:]) if rows else ([], [])


def _write_atomic(path: Path, header: list[str], rows: Iterable[list]) -> None:
    with atomic_open(path, fsync=True) as f:
        f.write(_csv_line(header))
        f.writelines(_csv_line(row) for row in rows)


class FolderLock:
    """An exclusive `flock` on `<folder>/.lock`, released by the kernel if the process dies."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_FILE
        self._file = None

    def __enter__(self) -> FolderLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise UserError(f"{self.path.parent} is in use by {holder}; wait for it to finish "
                            "or choose another out= folder") from None
        try:
            with naming(self.path):
                f.seek(0)
                f.truncate()
                f.write(f"process {os.getpid()} on {socket.gethostname()} since "
                        f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
                f.flush()
        except BaseException:
            f.close()  # releases the lock
            raise
        self._file = f
        return self

    def __exit__(self, *exc) -> None:
        # The file stays: unlinking it would let a waiter lock a stale inode while another locks a new one.
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()


class ExperimentStore:
    """Appends finished work to a journal CSV (runs.csv) and its epochs to history.csv in `folder`.

    A unit of work is identified by the `key` columns (the trial id; a trial and rung for
    successive halving, whose journal is rungs.csv); both CSVs carry them.
    """

    def __init__(self, folder: Path, runs_columns: list[str], history_columns: list[str],
                 journal: str = RUNS_FILE, key: tuple[str, ...] = ("trial_id",)) -> None:
        self.folder = Path(folder)
        self.runs_path = self.folder / journal
        self.history_path = self.folder / HISTORY_FILE
        self.runs_columns, self.history_columns = runs_columns, history_columns
        self.key = key
        self.stored_ids: set[str] = set()

    def _key_of(self, columns: list[str]):
        """A function from a CSV row (list of strings) to its key: 'id', or 'id/rung' for two columns."""
        positions = [columns.index(k) for k in self.key]
        return lambda row: "/".join(row[i] for i in positions)

    def key_of(self, record: dict) -> str:
        """The key of a record (dict) as stored: the same text its CSV row gives."""
        return "/".join(str(record[k]) for k in self.key)

    def open(self, known: set[str] | None = None) -> set[str]:
        """Create, check and repair the CSVs; return the keys of the work already stored.

        Torn last lines (a kill mid-write) are cut, exact repeats counted once, epochs of work without a
        journal row dropped, and stored work whose epochs are missing from history.csv forgotten, so it
        runs again (a trial gives the same numbers every time). A damaged line, or one that is no work of
        `known` (the keys this experiment can have), stops with a UserError naming file and line.
        """
        from .integrity import check_table, incomplete, read_table, without_repeats

        self.folder.mkdir(parents=True, exist_ok=True)
        tables = []
        for path, columns, key in ((self.runs_path, self.runs_columns, list(self.key)),
                                   (self.history_path, self.history_columns, [*self.key, "epoch"])):
            _cut_torn_line(path)
            if not path.exists() or path.stat().st_size == 0:
                _write_atomic(path, columns, [])
            table = read_table(path, DAMAGED)
            check_table(table, columns, DAMAGED)
            tables.append(without_repeats(table, key, DAMAGED))
        runs, history = tables
        run_key, history_key = self._key_of(self.runs_columns), self._key_of(self.history_columns)
        for row, line in zip(runs.rows, runs.lines):
            if known is not None and run_key(row) not in known:
                raise UserError(f"{runs.path} line {line} holds {run_key(row)}, which is no trial of this "
                                f"experiment; {DAMAGED}")
        missing = incomplete(runs, history, list(self.key))
        if missing:
            warnings.warn(f"{history.path} lacks epochs of {len(missing)} stored trial(s) (deleted or cut?); "
                          "they run again", TuningWarning, stacklevel=2)
        runs = runs.keep(lambda row: run_key(row) not in missing)
        self.stored_ids = {run_key(row) for row in runs.rows}
        history_kept = history.keep(lambda row: history_key(row) in self.stored_ids)
        for table, kept, columns in ((runs, runs, self.runs_columns), (history, history_kept, self.history_columns)):
            if len(kept.rows) < len(_read_rows(table.path)[1]):  # something was repaired: rewrite the file whole
                _write_atomic(table.path, columns, kept.rows)
        return set(self.stored_ids)

    def append(self, run_row: dict, history_rows: list[dict]) -> None:
        """Store one finished unit of work: its epoch rows, then its journal row, each flushed.

        Flushed to the OS, which keeps them through a killed process; an fsync per trial would
        guard only against a machine crash and cost ~0.5 ms per file (4% of a digits run).
        """
        key = self.key_of(run_row)
        if key in self.stored_ids:
            raise RuntimeError(f"trial {key} is already stored")
        for path, lines in (
            (self.history_path, [_csv_line(r.get(c) for c in self.history_columns) for r in history_rows]),
            (self.runs_path, [_csv_line(run_row.get(c) for c in self.runs_columns)]),
        ):
            with naming(path), open(path, "a", encoding="utf-8", newline="") as f:
                f.writelines(lines)
        self.stored_ids.add(key)

    def sort(self, order: list[str]) -> None:
        """Rewrite both CSVs in the canonical order of `order` (keys), so that runs with any n_jobs match."""
        rank = {key: i for i, key in enumerate(order)}
        runs_key, history_key = self._key_of(self.runs_columns), self._key_of(self.history_columns)
        epoch = self.history_columns.index("epoch")
        for path, columns, sort_key in (
            (self.runs_path, self.runs_columns, lambda row: rank.get(runs_key(row), len(rank))),
            (self.history_path, self.history_columns,
             lambda row: (rank.get(history_key(row), len(rank)), int(row[epoch]))),
        ):
            _, rows = _read_rows(path)
            _write_atomic(path, columns, sorted(rows, key=sort_key))


def write_table(path: Path, columns: list[str], rows: list[dict]) -> None:
    """Write a whole CSV atomically from dicts (a temporary file renamed into place)."""
    _write_atomic(path, columns, [[row.get(c) for c in columns] for row in rows])


def move_aside(folder: Path) -> Path | None:
    """Move a previous experiment's outputs into `<folder>/replaced-<time>/` (for force=True); nothing is deleted."""
    present = [folder / name for name in OUTPUTS if (folder / name).exists()]
    if not present:
        return None
    backup = folder / f"replaced-{time.strftime('%Y%m%d-%H%M%S')}"
    backup.mkdir()
    for path in present:
        path.rename(backup / path.name)
    return backup
