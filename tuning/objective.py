"""What selection optimises: one validation metric, its direction, and how configurations rank and tie.

Selection, the leaderboard, successive halving's promotion, the refit's epoch count, early
stopping, the progress bar, the plots and the reports all ask the `Objective`, so the answer to
"which column is the score, and is higher better" lives here alone. New metrics plug in at `METRICS`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Metric:
    """A per-epoch metric: its name in the logs, whether higher is better, how it reads on an axis."""

    name: str
    higher_is_better: bool
    label: str


METRICS = {
    "accuracy": Metric("accuracy", True, "accuracy"),
    "loss": Metric("loss", False, "loss"),
}
# Regression trains on a standardized target, so its loss is not in the target's units.
_REGRESSION_LOSS_LABEL = "loss (MSE, standardized target)"


def mode_of(column: str) -> str:
    """'max' or 'min': the direction of a logged column such as val_loss (for EarlyStopping's mode)."""
    return "max" if METRICS[column.removeprefix("val_")].higher_is_better else "min"


@dataclass(frozen=True)
class Objective:
    """The validation metric configurations are ranked by, for one task."""

    metric: str
    task: str

    @classmethod
    def for_task(cls, task: str) -> Objective:
        """Validation accuracy for classification, validation loss for regression."""
        return cls("accuracy" if task == "classification" else "loss", task)

    @property
    def column(self) -> str:
        """The validation column in runs.csv and history.csv: val_accuracy, val_loss."""
        return f"val_{self.metric}"

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.metric].higher_is_better

    @property
    def mode(self) -> str:
        return "max" if self.higher_is_better else "min"

    def metric_label(self, metric: str | None = None) -> str:
        """How a metric (default: this one) reads on an axis, without 'validation'."""
        metric = metric or self.metric
        if metric == "loss" and self.task == "regression":
            return _REGRESSION_LOSS_LABEL
        return METRICS[metric].label

    @property
    def label(self) -> str:
        """'validation accuracy', 'validation loss (MSE, standardized target)'."""
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
        return min(rows, key=lambda r: (self.minimised(r[self.column]), r["val_loss"], r["epoch"]))

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
