"""An experiment folder read back: config, runs, epochs, ranking and, once finished, the choice.

The one reader behind `report` and the plots, so both see the same numbers; it only reads.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from .config import Experiment, load_experiment
from .errors import UserError
from .halving import latest_rungs
from .integrity import check_table, read_table, without_repeats
from .objective import Objective, tracked_metrics
from .select import leaderboard
from .space import n_configs
from .store import (
    BEST_FILE,
    CONFIG_FILE,
    DATA_FILE,
    HISTORY_FILE,
    IMPORTANCE_FILE,
    IMPORTANCE_SOURCE,
    MODEL_FILE,
    PREDICTIONS_FILE,
    RUNGS_FILE,
    RUNS_FILE,
    Columns,
)


@dataclass
class Results:
    """What an experiment folder holds. `best` and `predictions` are None until the run has finished."""

    folder: Path
    experiment: Experiment
    runs: pd.DataFrame
    history: pd.DataFrame
    params: list[str]  # searched keys, sorted (as runs.csv's columns)
    task: str
    board: pd.DataFrame
    best: dict | None
    predictions: pd.DataFrame | None
    expected_trials: int
    objective: Objective
    rungs: pd.DataFrame | None = None  # successive halving: one row per trial and rung
    finished: bool = True  # False for a halving search interrupted before its runs.csv was written
    notes: list[str] = field(default_factory=list)  # data.json's: what loading the data noticed
    summary: object = None  # the RunResult of the run that returned these results (None when read back)
    validation_rows: int = 0  # data.json's: rows in the (first fold's) validation split, 0 when unknown

    @property
    def ok(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == "ok"]

    @property
    def missing(self) -> int:
        return max(self.expected_trials - len(self.runs), 0)

    @property
    def leaderboard(self) -> pd.DataFrame:
        """One row per configuration, best first (the table the CLI prints)."""
        return self.board

    @cached_property
    def importance(self) -> pd.DataFrame:
        """param, importance: the share of the validation score's variance each searched parameter explains.

        Under successive halving only the first rung compares every candidate at one budget, so it is used.
        Read from importance.csv when that was computed from the folder's files as they are now (fANOVA and
        the scikit-learn it imports take about 1.5 s), computed otherwise.
        """
        from .importance import COLUMNS, importances

        path, source = self.folder / IMPORTANCE_FILE, self.folder / IMPORTANCE_SOURCE
        try:
            if source.read_text(encoding="utf-8") == self.importance_source:
                table = pd.read_csv(path, dtype={"param": str, "importance": float})
                if list(table.columns) == COLUMNS and table["param"].isin(self.params).all():
                    return table
        except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
            pass  # no cache, or a damaged one: compute

        first_rung = self.rungs is not None and len(self.rungs)
        board = (leaderboard(self.rungs[self.rungs["rung"].astype(int) == 0], self.params, self.objective)
                 if first_rung else self.board)
        return importances(board, self.params, self.objective)

    @property
    def importance_source(self) -> str:
        """A digest of the files the importance is computed from (config.toml, runs.csv, rungs.csv)."""
        digest = hashlib.sha256()
        for name in (CONFIG_FILE, RUNS_FILE, RUNGS_FILE):
            path = self.folder / name
            digest.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"") + b"\0")
        return digest.hexdigest()

    @property
    def test_scores(self) -> dict:
        """The final model's scores on the test split ({} until the run has finished)."""
        return {k: v for k, v in (self.best or {}).items() if k.startswith("test_") and isinstance(v, float)}

    @property
    def predictor(self):
        """The final model with its preprocessing (`.predict(rows)`), or None until the run has finished."""
        from .predict import Predictor

        path = self.folder / MODEL_FILE
        return Predictor.load(path) if self.best is not None and path.is_file() else None

    def _figure(self, name: str):
        from .plots import FIGURES

        return FIGURES[name](self)

    def plot_learning_curves(self):
        """Validation score per epoch of the best configurations (a matplotlib Figure, or None)."""
        return self._figure("learning_curves.png")

    def plot_learning_curves_by_param(self):
        """One panel per searched parameter: the mean validation curve of each of its values."""
        return self._figure("learning_curves_by_param.png")

    def plot_parallel_coordinates(self):
        """One line per configuration across every searched parameter, coloured by its validation score."""
        return self._figure("parallel_coordinates.png")

    def plot_importance(self):
        """The share of the validation score's variance each searched parameter explains (None when unknown)."""
        return self._figure("importance.png")

    def plot_train_vs_val(self):
        """Training vs validation loss and accuracy of the best configuration."""
        return self._figure("train_vs_val.png")

    def plot_heatmap(self):
        """Mean validation score over two searched parameters (None with fewer than two)."""
        return self._figure("heatmap.png")

    def plot_param_effects(self):
        """Every trial's score by the value of each searched parameter."""
        return self._figure("param_effects.png")

    def plot_final_model(self):
        """The final model's training curves and its test confusion matrix (or predicted vs true)."""
        return self._figure("final_model.png")

    def plot_rungs(self):
        """Successive halving: every candidate's score at each rung (None for other searches)."""
        return self._figure("rungs.png")


REMEDY = "delete that line (the report shows the rest) or restore the file"


def _read_csv(path: Path, **kwargs) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} cannot be read: {exc}") from None


def _checked_csv(path: Path, columns: list[str], key: list[str]) -> pd.DataFrame:
    """A folder CSV checked line by line (damage named by line, exact repeats counted once), as a DataFrame."""
    table = without_repeats(_checked(path, columns), key, REMEDY)
    return _read_csv(path).iloc[[line - 2 for line in table.lines]].reset_index(drop=True)


def _checked(path: Path, columns: list[str]):
    table = read_table(path, REMEDY)
    check_table(table, columns, REMEDY)
    return table


def _columns(experiment: Experiment, journal: Path) -> tuple[Columns, int]:
    """The folder's CSV schemas, and its number of classes as far as they tell (2 when ROC AUC is tracked)."""
    header = read_table(journal, REMEDY).header
    task = "classification" if "val_accuracy" in header else "regression"
    classes = 2 if "val_roc_auc" in header else 0
    return Columns(sorted(experiment.space), task, tracked_metrics(task, classes),
                   experiment.search["strategy"] == "halving", experiment.data["folds"] > 0), classes


def read_results(folder: str | Path) -> Results:
    """Read an experiment folder, finished or interrupted; raises UserError when it is not one or is damaged."""
    folder = Path(folder)
    runs_path, rungs_path = folder / RUNS_FILE, folder / RUNGS_FILE
    if not (folder / CONFIG_FILE).is_file() or not (runs_path.is_file() or rungs_path.is_file()):
        raise UserError(f"{folder} is not an experiment folder: expected {CONFIG_FILE} and {RUNS_FILE} in it")
    experiment = load_experiment(folder / CONFIG_FILE)
    halving = experiment.search["strategy"] == "halving"
    columns, classes = _columns(experiment, rungs_path if halving and rungs_path.is_file() else runs_path)
    task = columns.task
    rungs = _checked_csv(rungs_path, columns.runs, ["trial_id", "rung"]) if halving and rungs_path.is_file() else None
    # An interrupted halving search has no runs.csv yet: each trial's latest rung in the journal is its row.
    runs = _checked_csv(runs_path, columns.runs, ["trial_id"]) if runs_path.is_file() else latest_rungs(rungs)
    history_path = folder / HISTORY_FILE
    history = (_checked_csv(history_path, columns.history, ["trial_id", *(["rung"] * halving), "epoch"])
               if history_path.is_file() else pd.DataFrame(columns=columns.history))
    best_path, predictions_path = folder / BEST_FILE, folder / PREDICTIONS_FILE
    best = _read_json(best_path) if best_path.is_file() else None
    labels = str if task == "classification" else float  # class labels stay text ("07" is not 7)
    predictions = (_read_csv(predictions_path, dtype={"true": labels, "predicted": labels})
                   if predictions_path.is_file() else None)
    expected = n_configs(experiment) * experiment.search["repeats"] * max(experiment.data["folds"], 1)
    objective = Objective.for_task(task, experiment.search["metric"], classes)
    board = leaderboard(runs, sorted(experiment.space), objective) if len(runs) else pd.DataFrame()
    data_path = folder / DATA_FILE
    data = _read_json(data_path) if data_path.is_file() else {}
    notes, validation_rows = data.get("notes", []), data.get("validation_rows", 0)
    return Results(folder, experiment, runs, history, sorted(experiment.space), task, board, best, predictions,
                   expected, objective, rungs, finished=runs_path.is_file(),
                   notes=[str(n) for n in notes] if isinstance(notes, list) else [],
                   validation_rows=validation_rows if type(validation_rows) is int and validation_rows > 0 else 0)


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} cannot be read ({exc}); run the experiment again to rewrite it") from None
    if not isinstance(value, dict):
        raise UserError(f"{path} is damaged (not a JSON object); run the experiment again to rewrite it")
    return value
