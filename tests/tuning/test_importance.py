"""Parameter importance: fANOVA shares over the configurations, and how the folder and report show them."""

import itertools

import numpy as np
import pandas as pd
import pytest

from tests.helpers import run_quick
from tuning.importance import importances, summary
from tuning.objective import Objective
from tuning.select import leaderboard

ACCURACY = Objective.for_task("classification", "accuracy", 3)
LOSS = Objective.for_task("regression", "mse", None)


def runs_where(score, grid: dict, repeats: int = 2, seed: int = 0) -> pd.DataFrame:
    """A runs.csv-shaped table over the grid whose val score is `score(config)` plus a little noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, values in enumerate(itertools.product(*grid.values())):
        config = dict(zip(grid, values))
        for repeat in range(repeats):
            rows.append({**config, "config_id": f"c{i:03d}", "repeat": repeat, "status": "ok",
                         "val_accuracy": score(config) + rng.normal(0, 1e-3), "val_mse": 1 - score(config),
                         "val_loss": 0.5, "final_epoch": 10, "fit_seconds": 0.1})
    return pd.DataFrame(rows)


GRID = {"lr": [0.001, 0.01, 0.1], "batch_size": [16, 32, 64], "hidden_units": [32, 64, 128]}


def only_lr(config: dict) -> float:
    return {0.001: 0.6, 0.01: 0.9, 0.1: 0.8}[config["lr"]]


def test_the_one_parameter_that_matters_gets_the_largest_share():
    runs = runs_where(only_lr, GRID)
    table = importances(leaderboard(runs, sorted(GRID), ACCURACY), sorted(GRID), ACCURACY)
    assert list(table.columns) == ["param", "importance"]
    assert table["param"].iloc[0] == "lr" and table["importance"].iloc[0] > 0.9
    assert table["importance"].sum() == pytest.approx(1.0)
    assert table["importance"].is_monotonic_decreasing
    assert summary(table, ACCURACY).startswith("lr explains 100% of the variation in val_accuracy")


def test_a_loss_objective_rates_the_same_parameter():
    runs = runs_where(lambda c: {16: 0.9, 32: 0.7, 64: 0.5}[c["batch_size"]], GRID)
    table = importances(leaderboard(runs, sorted(GRID), LOSS), sorted(GRID), LOSS)
    assert table["param"].iloc[0] == "batch_size"


def test_text_lists_and_flags_are_rated_as_choices():
    grid = {"optimizer": ["adam", "sgd"], "hidden": [[64], [128, 64]], "batchnorm": [False, True]}
    runs = runs_where(lambda c: 0.9 if c["batchnorm"] else 0.5, grid)
    table = importances(leaderboard(runs, sorted(grid), ACCURACY), sorted(grid), ACCURACY)
    assert table["param"].iloc[0] == "batchnorm"


def test_a_parameter_unused_by_some_configurations_or_never_varied_is_left_out():
    grid = {"lr": [0.001, 0.01, 0.1], "optimizer": ["adam", "sgd"], "momentum": [0.9], "epochs": [5]}
    runs = runs_where(only_lr, grid)
    runs.loc[runs["optimizer"] == "adam", "momentum"] = None
    table = importances(leaderboard(runs, sorted(grid), ACCURACY), sorted(grid), ACCURACY)
    assert set(table["param"]) == {"lr", "optimizer"}


def test_too_few_configurations_say_nothing():
    runs = runs_where(only_lr, {"lr": [0.01, 0.1], "batch_size": [16]})
    board = leaderboard(runs, ["batch_size", "lr"], ACCURACY)
    assert importances(board, ["batch_size", "lr"], ACCURACY).empty
    assert importances(pd.DataFrame(), ["lr"], ACCURACY).empty
    assert summary(importances(board, ["lr"], ACCURACY), ACCURACY) == ""


def test_failed_configurations_do_not_count():
    runs = runs_where(only_lr, GRID)
    runs.loc[runs["hidden_units"] == 128, "status"] = "failed"
    board = leaderboard(runs, sorted(GRID), ACCURACY)
    table = importances(board, sorted(GRID), ACCURACY)
    assert table["param"].iloc[0] == "lr"


def test_a_run_writes_importance_csv_and_the_report_lists_it(tmp_path):
    from tuning.report import render

    run_quick(tmp_path, ["data.dataset=iris", "train.epochs=3", "search.repeats=1", "search.n_jobs=1",
                         "search.space={lr = [0.001, 0.1], batch_size = [16, 64]}"])
    results, _, report = render(tmp_path)
    table = pd.read_csv(tmp_path / "importance.csv")
    assert list(table.columns) == ["param", "importance"]
    assert set(table["param"]) <= {"lr", "batch_size"} and table["importance"].sum() == pytest.approx(1.0)
    assert "## Parameter importance" in report.read_text()
    assert "explains" in report.read_text()
