"""An experiment folder read back: config, runs, epochs, ranking and, once finished, the choice.

The one reader behind `report` and the plots, so both see the same numbers; it only reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .config import Experiment, load_experiment
from .errors import UserError
from .objective import Objective
from .select import leaderboard
from .space import candidates
from .store import BEST_FILE, CONFIG_FILE, HISTORY_FILE, PREDICTIONS_FILE, RUNGS_FILE, RUNS_FILE


@dataclass
class FolderResults:
    """What an experiment folder holds. `best` and `predictions` are None until the run has finished."""

    folder: Path
    experiment: Experiment
    runs: pd.DataFrame
    history: pd.DataFrame
    params: list[str]  # searched keys in the config's order
    task: str
    board: pd.DataFrame
    best: dict | None
    predictions: pd.DataFrame | None
    expected_trials: int
    objective: Objective
    rungs: pd.DataFrame | None = None  # successive halving: one row per trial and rung

    @property
    def ok(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == "ok"]

    @property
    def missing(self) -> int:
        return max(self.expected_trials - len(self.runs), 0)


def _read_csv(path: Path, **kwargs) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError) as exc:
        raise UserError(f"{path} cannot be read: {exc}") from None


def read_results(folder: str | Path) -> FolderResults:
    """Read an experiment folder; raises UserError when it is not one."""
    folder = Path(folder)
    if not (folder / CONFIG_FILE).is_file() or not (folder / RUNS_FILE).is_file():
        raise UserError(f"{folder} is not an experiment folder: expected {CONFIG_FILE} and {RUNS_FILE} in it")
    experiment = load_experiment(folder / CONFIG_FILE)
    runs = _read_csv(folder / RUNS_FILE)
    history = _read_csv(folder / HISTORY_FILE) if (folder / HISTORY_FILE).is_file() else pd.DataFrame()
    params = list(experiment.space)
    task = "classification" if "val_accuracy" in runs.columns else "regression"
    best_path, predictions_path = folder / BEST_FILE, folder / PREDICTIONS_FILE
    best = json.loads(best_path.read_text(encoding="utf-8")) if best_path.is_file() else None
    labels = str if task == "classification" else float  # class labels stay text ("07" is not 7)
    predictions = (_read_csv(predictions_path, dtype={"true": labels, "predicted": labels})
                   if predictions_path.is_file() else None)
    expected = len(candidates(experiment)) * experiment.search["repeats"]
    objective = Objective.for_task(task)
    board = leaderboard(runs, params, objective) if len(runs) else pd.DataFrame()
    rungs = _read_csv(folder / RUNGS_FILE) if (folder / RUNGS_FILE).is_file() else None
    return FolderResults(folder, experiment, runs, history, params, task, board, best, predictions, expected,
                         objective, rungs)
