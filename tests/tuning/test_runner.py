"""The runner end to end on small data: CSVs, determinism across n_jobs, divergence, selection, test once."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from framework import load_model
from tests.helpers import assert_same_csvs, run_quick
from tuning import executor
from tuning.config import load_experiment
from tuning.errors import UserError
from tuning.objective import Objective
from tuning.prepare import prepare
from tuning.preprocess import Preprocessor
from tuning.runner import run_experiment
from tuning.select import leaderboard, select_best

ACCURACY = Objective.for_task("classification")


def _run(tmp_path, overrides, name="exp", **kwargs):
    return run_quick(tmp_path / name, overrides, **kwargs), tmp_path / name


def test_folder_has_one_row_per_trial_and_per_epoch(tmp_path, quick_overrides):
    result, folder = _run(tmp_path, quick_overrides)
    assert {p.name for p in folder.iterdir()} >= {"config.toml", "runs.csv", "history.csv", "best.json", "model.npz"}
    runs = pd.read_csv(folder / "runs.csv")
    assert len(runs) == 8 and runs["trial_id"].is_unique
    assert list(runs.columns) == ["trial_id", "config_id", "repeat", "seed", "hidden_units", "lr", "status", "error",
                                  "epochs", "final_epoch", "loss", "accuracy", "val_loss", "val_accuracy",
                                  "best_epoch", "best_val_loss", "best_val_accuracy", "fit_seconds"]
    assert (runs["status"] == "ok").all() and (runs["epochs"] == 8).all()
    history = pd.read_csv(folder / "history.csv")
    assert list(history.columns) == ["trial_id", "epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"]
    assert len(history) == 8 * 8
    assert history.groupby("trial_id")["epoch"].apply(list).map(lambda e: e == list(range(1, 9))).all()
    # runs.csv's final metrics are its last epoch's row of history.csv.
    last = history.groupby("trial_id").last()
    assert np.allclose(runs.set_index("trial_id")["val_loss"], last.loc[runs["trial_id"], "val_loss"])
    assert result.n_trials == 8 and result.n_run == 8


def test_n_jobs_1_and_2_give_identical_csvs(tmp_path, quick_overrides):
    _, one = _run(tmp_path, quick_overrides, "one", n_jobs=1)
    _, two = _run(tmp_path, quick_overrides, "two", n_jobs=2)
    assert_same_csvs(one, two)
    best_one, best_two = (json.loads((f / "best.json").read_text()) for f in (one, two))
    for best in (best_one, best_two):  # how long and on how many workers differs; nothing else may
        assert best["run"].pop("refit_seconds") > 0 and best["run"].pop("search_seconds") > 0
        best["run"].pop("workers")
    assert best_one == best_two


def test_a_second_run_resumes_and_runs_nothing_twice(tmp_path, quick_overrides):
    _, folder = _run(tmp_path, quick_overrides)
    before = (folder / "runs.csv").read_text()
    result, _ = _run(tmp_path, quick_overrides)
    assert result.n_run == 0 and (folder / "runs.csv").read_text() == before
    # A bigger grid in a new folder would be a new experiment; the same folder refuses it...
    with pytest.raises(UserError, match="different config"):
        _run(tmp_path, [*quick_overrides, "train.epochs=9"])
    assert (folder / "runs.csv").read_text() == before
    # ...unless forced, which moves the old results aside rather than deleting them.
    result, _ = _run(tmp_path, [*quick_overrides, "train.epochs=9"], force=True)
    assert result.n_run == 8
    backups = list(folder.glob("replaced-*"))
    assert len(backups) == 1 and (backups[0] / "runs.csv").read_text() == before


def test_diverging_lr_gives_diverged_rows_and_a_sane_best(tmp_path):
    overrides = ["data.dataset=iris", "train.epochs=10", "search.repeats=1",
                 "search.space={lr = [0.05, 1e6]}", "train.hidden_units=16"]
    result, folder = _run(tmp_path, overrides)
    runs = pd.read_csv(folder / "runs.csv")
    bad = runs[runs["lr"] == 1e6].iloc[0]
    assert bad["status"] == "diverged" and "try a lower learning rate" in bad["error"]
    assert result.best["params"] == {"lr": 0.05}
    assert result.leaderboard.iloc[-1]["lr"] == 1e6  # a diverged configuration ranks last
    assert result.best["test_accuracy"] > 0.8


def test_failed_trial_is_a_row_and_the_search_goes_on(tmp_path, quick_overrides, monkeypatch):
    real = executor.run_trial

    def flaky(spec, data, threads):
        if spec.params == {"hidden_units": 8, "lr": 0.2}:
            return real(dataclasses.replace(spec, train={**spec.train, "activation": "nonexistent"}), data, threads)
        return real(spec, data, threads)

    monkeypatch.setattr(executor, "run_trial", flaky)
    result, folder = _run(tmp_path, quick_overrides)
    runs = pd.read_csv(folder / "runs.csv")
    failed = runs[runs["status"] == "failed"]
    assert len(failed) == 2 and failed["error"].str.contains("ValueError: activation").all()
    assert result.best["params"] != {"hidden_units": 8, "lr": 0.2}


def test_test_split_is_read_once_after_every_trial(tmp_path, quick_overrides):
    experiment = load_experiment(None, quick_overrides)
    prep = prepare(experiment, tmp_path / "exp")
    reads_during_trials = []
    result = run_experiment(experiment, prepared=prep,
                            on_trial=lambda record, done, total: reads_during_trials.append(prep.splits.test_reads))
    assert reads_during_trials == [0] * 8
    assert result.splits.test_reads == 1
    # The test rows are none of the rows trials trained or validated on.
    assert result.best["test_rows"] == prep.splits.n_test
    trained = np.concatenate([prep.splits.X_train, prep.splits.X_val])
    X_test, _ = prep.splits._X_test, prep.splits._y_test
    assert not any((trained == row).all(axis=1).any() for row in X_test[:10])


def test_final_model_predicts_raw_inputs_with_its_stored_scaling(tmp_path, quick_overrides):
    result, folder = _run(tmp_path, quick_overrides)
    model = load_model(folder / "model.npz")
    meta = model.metadata
    assert meta["task"] == "classification" and meta["classes"] == ["setosa", "versicolor", "virginica"]
    X_test, y_test = result.splits._X_test, result.splits._y_test
    proba = model.predict(Preprocessor.from_dict(meta["preprocessor"]).transform(X_test))
    assert np.mean(proba.argmax(1) == y_test) == pytest.approx(result.best["test_accuracy"])


def test_regression_selects_on_validation_loss(tmp_path):
    overrides = ["data.dataset=diabetes", "train.epochs=15", "search.repeats=1",
                 "search.space={lr = [0.001, 0.01]}", "train.momentum=0.5"]
    result, folder = _run(tmp_path, overrides)
    runs = pd.read_csv(folder / "runs.csv")
    assert "val_accuracy" not in runs.columns and runs["val_loss"].notna().all()
    assert result.best["val_loss"] == pytest.approx(runs["val_loss"].min())
    assert 30 < result.best["test_rmse"] < 80  # diabetes targets span 25..346; a mean guess gives ~77


def test_early_stopping_refits_for_the_chosen_epoch_count(tmp_path):
    overrides = ["data.dataset=iris", "train.epochs=200", "train.early_stopping=3", "search.repeats=1",
                 "search.space={lr = [0.3]}", "train.hidden_units=16"]
    result, folder = _run(tmp_path, overrides)
    run = pd.read_csv(folder / "runs.csv").iloc[0]
    assert run["epochs"] < 200 and run["final_epoch"] == run["epochs"] - 3  # 3 epochs without improvement
    assert result.best["epochs"] == run["final_epoch"]


def test_ties_break_by_validation_loss_then_grid_order():
    runs = pd.DataFrame({
        "config_id": [0, 0, 1, 1, 2, 2, 3, 3], "lr": [0.1, 0.1, 0.2, 0.2, 0.3, 0.3, 0.4, 0.4],
        "status": ["ok"] * 6 + ["ok", "diverged"],
        "val_accuracy": [0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.99, np.nan],
        "val_loss": [0.30, 0.30, 0.20, 0.20, 0.1, 0.1, 0.05, np.nan],
        "final_epoch": [5] * 8, "fit_seconds": [1.0] * 8,
    })
    board = leaderboard(runs, ["lr"], ACCURACY)
    assert board["config_id"].tolist() == [1, 0, 2, 3]
    assert select_best(board, ACCURACY)["lr"] == 0.2


def test_one_se_picks_the_simplest_close_configuration():
    runs = pd.DataFrame({
        "config_id": [0, 0, 1, 1], "hidden_units": [128, 128, 16, 16], "status": ["ok"] * 4,
        "val_accuracy": [0.95, 0.91, 0.925, 0.915], "val_loss": [0.2, 0.3, 0.25, 0.26],
        "final_epoch": [5] * 4, "fit_seconds": [1.0] * 4,
    })
    board = leaderboard(runs, ["hidden_units"], ACCURACY)
    assert select_best(board, ACCURACY, "mean")["hidden_units"] == 128
    chosen = select_best(board, ACCURACY, "one_se", complexity=lambda row: row["hidden_units"])
    assert chosen["hidden_units"] == 16
