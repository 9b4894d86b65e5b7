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
from tuning.runner import run_experiment, small_enough_for_this_process
from tuning.select import leaderboard, select_best

ACCURACY = Objective.for_task("classification")


def _run(tmp_path, overrides, name="exp", **kwargs):
    return run_quick(tmp_path / name, overrides, **kwargs), tmp_path / name


def test_folder_has_one_row_per_trial_and_per_epoch(tmp_path, quick_overrides):
    result, folder = _run(tmp_path, quick_overrides)
    assert {p.name for p in folder.iterdir()} >= {"config.toml", "runs.csv", "history.csv", "best.json", "model.npz"}
    runs = pd.read_csv(folder / "runs.csv")
    assert len(runs) == 8 and runs["trial_id"].is_unique
    metrics = ["val_loss", "val_accuracy", "val_balanced_accuracy", "val_f1"]  # iris has 3 classes: no ROC AUC
    assert list(runs.columns) == ["trial_id", "config_id", "repeat", "seed", "hidden_units", "lr", "status", "error",
                                  "epochs", "final_epoch", "loss", "accuracy", *metrics,
                                  "best_epoch", *(f"best_{m}" for m in metrics), "fit_seconds"]
    assert (runs["status"] == "ok").all() and (runs["epochs"] == 8).all()
    history = pd.read_csv(folder / "history.csv")
    assert list(history.columns) == ["trial_id", "epoch", "loss", "accuracy", *metrics, "lr", "seconds"]
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


def test_a_small_search_on_all_cores_runs_in_this_process_with_the_same_results(tmp_path, quick_overrides):
    auto, in_here = _run(tmp_path, quick_overrides, "auto", n_jobs=-1)
    assert auto.in_process.startswith("in this process") and auto.n_workers == 1
    asked, two = _run(tmp_path, quick_overrides, "two", n_jobs=2)  # a count asked for is a count given
    assert asked.in_process == "" and asked.n_workers == 2
    assert_same_csvs(in_here, two)
    big = load_experiment(None, [*quick_overrides, "train.epochs=5000"])  # too much training for one process
    assert small_enough_for_this_process(prepare(big, tmp_path / "big"), {**big.search, "n_jobs": -1}) == ""


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


def test_regression_reports_errors_in_the_targets_units_and_selects_on_validation_rmse(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = 1000 + 250 * X[:, 0] - 100 * X[:, 1] + rng.normal(0, 20, 300)  # prices, say: far from unit scale
    pd.DataFrame({"price": y, "a": X[:, 0], "b": X[:, 1], "c": X[:, 2]}).to_csv(tmp_path / "prices.csv", index=False)
    overrides = [f"data.dataset='{tmp_path / 'prices.csv'}'", "data.target=price", "train.epochs=30",
                 "search.repeats=1", "search.space={lr = [0.001, 0.01, 0.05]}", "train.momentum=0.5"]
    result, folder = _run(tmp_path, overrides)
    runs, history = pd.read_csv(folder / "runs.csv"), pd.read_csv(folder / "history.csv")
    assert "val_accuracy" not in runs.columns
    assert {"val_mse", "val_rmse", "val_mae", "val_r2"} <= set(history.columns)
    best = result.best
    assert best["val_rmse"] == pytest.approx(runs["val_rmse"].min())  # selected on validation RMSE
    assert np.allclose(runs["val_rmse"] ** 2, runs["val_mse"])
    # best.json's test errors, in the target's units: what test_predictions.csv gives
    predictions = pd.read_csv(folder / "test_predictions.csv")
    error = predictions["predicted"] - predictions["true"]
    assert best["test_rmse"] == pytest.approx(np.sqrt(np.mean(error ** 2)), rel=1e-5)
    assert best["test_mae"] == pytest.approx(np.mean(np.abs(error)), rel=1e-5)
    ss = np.sum((predictions["true"] - predictions["true"].mean()) ** 2)
    assert best["test_r2"] == pytest.approx(1 - np.sum(error ** 2) / ss, rel=1e-5) and best["test_r2"] > 0.8


@pytest.mark.parametrize("metric", ["balanced_accuracy", "f1", "loss"])
def test_search_metric_names_what_selection_ranks_by(tmp_path, quick_overrides, metric):
    result, folder = _run(tmp_path, [*quick_overrides, f"search.metric={metric}"])
    runs = pd.read_csv(folder / "runs.csv")
    means = runs.groupby("config_id")[f"val_{metric}"].mean()
    assert result.best[f"val_{metric}"] == pytest.approx(means.min() if metric == "loss" else means.max())


def test_a_metric_that_does_not_fit_the_data_is_refused(tmp_path, quick_overrides):
    with pytest.raises(UserError, match=r"search.metric = 'roc_auc' does not apply .* \(ROC AUC needs two classes\)"):
        _run(tmp_path, [*quick_overrides, "search.metric=roc_auc"])  # iris: 3 classes
    with pytest.raises(UserError, match=r"search.metric = 'rmse' does not apply to this classification data"):
        _run(tmp_path, [*quick_overrides, "search.metric=rmse"])


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


def test_two_classes_track_roc_auc_per_epoch_and_on_the_test_split(tmp_path):
    overrides = ["data.dataset=breast_cancer", "train.epochs=3", "search.repeats=1", "search.space={lr = [0.05]}",
                 "search.metric=roc_auc"]
    result, folder = _run(tmp_path, overrides)
    history = pd.read_csv(folder / "history.csv")
    assert history["val_roc_auc"].between(0.5, 1).all()
    assert result.best["val_roc_auc"] == pytest.approx(history["val_roc_auc"].iloc[-1])
    assert 0.9 < result.best["test_roc_auc"] <= 1
    assert {"test_f1", "test_balanced_accuracy", "test_accuracy"} <= set(result.best)
