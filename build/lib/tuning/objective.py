"""What selection optimises: one validation metric, its direction, and how configurations rank and tie.

Selection, the leaderboard, successive halving's promotion, the refit's epoch count, early
stopping, the progress bar, the plots and the reports all ask the `Objective`, so the answer to
"which column is the score, and is higher better" lives here alone. The metrics each trial records
per epoch (`tracked_metrics`) come from the framework's registry, which says each one's direction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from framework.metrics import METRICS as FRAMEWORK_METRICS

from .errors import ConfigError

CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "f1", "roc_auc")  # roc_auc: two classes only
REGRESSION_METRICS = ("mse", "rmse", "mae", "r2")  # in the target's own units (trials train on it standardized)
DEFAULT_METRIC = {"classification": "accuracy", "regression": "rmse"}
LABELS = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy", "f1": "macro F1", "roc_auc": "ROC AUC",
          "mse": "MSE", "rmse": "RMSE", "mae": "MAE", "r2": "R²", "loss": "loss"}
# Regression trains on a standardized target, so its loss is not in the target's units.
_REGRESSION_LOSS_LABEL = "loss (MSE, standardized target)"


def tracked_metrics(task: str, n_classes: int = 0) -> list[str]:
    """The validation metrics every trial records each epoch (val_<name> in history.csv), besides the loss."""
    if task == "regression":
        return list(REGRESSION_METRICS)
    return [m for m in CLASSIFICATION_METRICS if m != "roc_auc" or n_classes == 2]


# How far each regression error scales with the target: trials train on (y - mean) / std.
_UNITS = {"mse": 2, "rmse": 1, "mae": 1}


def in_target_units(logs: dict, std: float) -> dict:
    """Logs of a network trained on a standardized target, with its errors (val_rmse, rmse, ...) in the
    target's own units; R² and the loss (the training objective, reported as such) are left as they are."""
    return {key: value * std ** _UNITS[key.removeprefix("val_")] if key.removeprefix("val_") in _UNITS else value
            for key, value in logs.items()}


def higher_is_better(metric: str) -> bool:
    return metric != "loss" and FRAMEWORK_METRICS[metric].higher_is_better


def mode_of(column: str) -> str:
    """'max' or 'min': the direction of a logged column such as val_loss (for EarlyStopping's mode)."""
    return "max" if higher_is_better(column.removeprefix("val_")) else "min"


def _last_if_nan(value: float) -> float:
    return math.inf if math.isnan(value) else value  # a NaN score (ROC AUC of one class) is never the best


@dataclass(frozen=True)
class Objective:
    """The validation metric configurations are ranked by, for one task."""

    metric: str
    task: str

    @classmethod
    def for_task(cls, task: str, metric: str = "", n_classes: int = 0) -> Objective:
        """`metric` (empty: accuracy for classification, RMSE for regression), checked against the task."""
        metric = metric or DEFAULT_METRIC[task]
        allowed = ["loss", *tracked_metrics(task, n_classes)]
        if metric not in allowed:
            why = " (ROC AUC needs two classes)" if metric == "roc_auc" and task == "classification" else ""
            raise ConfigError(f"config: search.metric = {metric!r} does not apply to this {task} data{why}; "
                              f"expected one of {', '.join(allowed)}")
        return cls(metric, task)

    @property
    def column(self) -> str:
        """The validation column in runs.csv and history.csv: val_accuracy, val_rmse, val_loss, ..."""
        return f"val_{self.metric}"

    @property
    def higher_is_better(self) -> bool:
        return higher_is_better(self.metric)

    @property
    def mode(self) -> str:
        return "max" if self.higher_is_better else "min"

    def metric_label(self, metric: str | None = None) -> str:
        """How a metric (default: this one) reads on an axis, without 'validation'."""
        metric = metric or self.metric
        if metric == "loss" and self.task == "regression":
            return _REGRESSION_LOSS_LABEL
        return LABELS.get(metric, metric)

    @property
    def label(self) -> str:
        """'validation accuracy', 'validation RMSE', 'validation loss (MSE, standardized target)'."""
        return f"validation {self.metric_label()}"

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"

    def best(self, values: Iterable[float]) -> float:
        """The best of some scores."""
        return max(values) if self.higher_is_better else min(values)

    def minimised(self, value: float) -> float:
        """The score as a number to minimise (negated when higher is better): for sort keys."""
        return -value if self.higher_is_better else value

    def within(self, value: float, reference: float, margin: float) -> bool:
        """Whether `value` is no worse than `reference` by more than `margin`."""
        return value >= reference - margin if self.higher_is_better else value <= reference + margin

    def best_epoch(self, rows: list[dict]) -> dict | None:
        """The epoch row with the best validation score; ties go to the lower val_loss, then the earlier epoch."""
        if not rows:
            return None
        return min(rows, key=lambda r: (_last_if_nan(self.minimised(r[self.column])), r["val_loss"], r["epoch"]))

    def rank(self, board: pd.DataFrame, before: list[tuple[str, bool]] = ()) -> pd.DataFrame:
        """`board` (columns mean, val_loss, config_id) sorted best first, stable.

        `before` lists (column, ascending) keys that come first (the leaderboard's rung and health);
        then the mean score, ties broken by the mean validation loss, then the configuration's order.
        """
        keys = [*before, ("_score", True), ("val_loss", True), ("config_id", True)]
        ordered = board.assign(_score=board["mean"].map(self.minimised))
        ordered = ordered.sort_values([k for k, _ in keys], ascending=[a for _, a in keys], na_position="last",
                                      kind="mergesort")
        return ordered.drop(columns="_score")
