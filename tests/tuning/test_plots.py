"""Plots of an experiment folder: files, the numbers behind them, partial folders, regression, one parameter."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import run_quick
from tuning.formatting import param_label
from tuning.plots import curve_data, draw_plots, heatmap_axes, heatmap_values, is_geometric
from tuning.results import read_results

ALL = {"learning_curves.png", "learning_curves_by_param.png", "train_vs_val.png", "heatmap.png", "param_effects.png",
       "parallel_coordinates.png", "importance.png", "final_model.png"}
FAST = ["train.epochs=6", "search.repeats=2", "search.n_jobs=1"]


def _experiment(folder: Path, overrides: list[str]) -> tuple[Path, list[Path], dict[str, bytes]]:
    """Run a small experiment into `folder`, draw its plots; return the folder, the paths and the CSVs' bytes
    read just before drawing."""
    run_quick(folder, [*FAST, *overrides])
    before = {name: (folder / name).read_bytes() for name in ("runs.csv", "history.csv")}
    return folder, draw_plots(folder), before


@pytest.fixture(scope="module")
def classification(tmp_path_factory):
    """iris, lr x batch_size x hidden_units; lr = 1e6 diverges in every trial."""
    return _experiment(tmp_path_factory.mktemp("plots") / "iris", [
        "data.dataset=iris", "search.space={lr = [0.05, 0.2, 1e6], batch_size = [16, 32], hidden_units = [8, 16]}"])


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    return _experiment(tmp_path_factory.mktemp("plots") / "diabetes", [
        "data.dataset=diabetes", "search.space={lr = [0.01, 0.03], batch_size = [32, 64]}"])


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    return _experiment(tmp_path_factory.mktemp("plots") / "single", [
        "data.dataset=iris", "search.space={lr = [0.05, 0.2]}"])


def _check_pngs(paths: list[Path], folder: Path, names: set[str]) -> None:
    import matplotlib.image

    assert {p.name for p in paths} == names
    assert {p.name for p in (folder / "plots").glob("*.png")} == names
    for path in paths:
        assert path.parent == folder / "plots"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = matplotlib.image.imread(path)
        height, width = image.shape[:2]
        assert 350 <= height <= 1600 and 700 <= width <= 2000, (path.name, image.shape)
        assert image.shape[2] in (3, 4) and image.std() > 0.05  # not a blank canvas


def test_every_figure_is_a_readable_png(classification):
    folder, paths, _ = classification
    _check_pngs(paths, folder, ALL)


def test_drawing_leaves_the_csvs_unchanged(classification, regression):
    for folder, _, before in (classification, regression):
        for name, content in before.items():
            assert (folder / name).read_bytes() == content


def test_diverged_trials_are_left_out(classification):
    folder, _, _ = classification
    runs = pd.read_csv(folder / "runs.csv")
    assert (runs.loc[runs["lr"] == 1e6, "status"] == "diverged").all()
    table = heatmap_values(runs, "lr", "batch_size", "hidden_units", "val_accuracy")[8]
    assert table[1e6].isna().all() and table[0.05].notna().all()


@pytest.mark.parametrize("panel", ["hidden_units", None])
def test_heatmap_values_are_the_mean_of_ok_trials(classification, panel):
    folder, _, _ = classification
    runs = pd.read_csv(folder / "runs.csv")
    tables = heatmap_values(runs, "lr", "batch_size", panel, "val_accuracy")
    ok = runs[runs["status"] == "ok"]
    expected = ok.groupby([panel, "batch_size", "lr"] if panel else ["batch_size", "lr"])["val_accuracy"].mean()
    assert list(tables) == ([8, 16] if panel else [None])
    cells = 0
    for value, table in tables.items():
        assert list(table.index) == [16, 32] and list(table.columns) == [0.05, 0.2, 1e6]
        for y in table.index:
            for x in table.columns:
                key = (value, y, x) if panel else (y, x)
                if key in expected.index:
                    assert table.loc[y, x] == pytest.approx(expected[key], rel=1e-12)
                    cells += 1
                else:
                    assert np.isnan(table.loc[y, x])
    assert cells == len(expected) == (8 if panel else 4)


def test_heatmap_axes_prefer_lr_by_batch_size_by_hidden_units(classification):
    runs = pd.read_csv(classification[0] / "runs.csv")
    assert heatmap_axes(runs, ["hidden_units", "batch_size", "lr"]) == ("lr", "batch_size", "hidden_units")
    assert heatmap_axes(runs, ["hidden_units", "lr"]) == ("lr", "hidden_units", None)
    assert heatmap_axes(runs, ["lr"]) is None


def test_curve_data_is_mean_and_spread_over_ok_repeats(classification):
    folder, _, _ = classification
    runs, history = pd.read_csv(folder / "runs.csv"), pd.read_csv(folder / "history.csv")
    config_id = int(runs.loc[runs["status"] == "ok", "config_id"].iloc[0])
    curve = curve_data(runs, history, "val_loss", [config_id])
    trials = runs.loc[runs["config_id"] == config_id, "trial_id"]
    wide = history[history["trial_id"].isin(trials)].pivot(index="epoch", columns="trial_id", values="val_loss")
    assert list(curve["epoch"]) == list(range(1, 7)) and (curve["n"] == 2).all()
    np.testing.assert_allclose(curve["mean"], wide.mean(axis=1))
    np.testing.assert_allclose(curve["min"], wide.min(axis=1))
    np.testing.assert_allclose(curve["max"], wide.max(axis=1))
    diverged = runs.loc[runs["status"] == "diverged", "config_id"].unique().tolist()
    assert curve_data(runs, history, "val_loss", diverged).empty


def test_an_interrupted_folder_gets_the_figures_its_csvs_allow(classification, tmp_path):
    folder = tmp_path / "partial"
    shutil.copytree(classification[0], folder)  # plots/ included: a stale final_model.png must go
    (folder / "best.json").unlink()
    (folder / "test_predictions.csv").unlink()
    runs = pd.read_csv(folder / "runs.csv")
    runs.iloc[::3].to_csv(folder / "runs.csv", index=False)  # some trials never ran
    paths = draw_plots(folder)
    _check_pngs(paths, folder, ALL - {"final_model.png"})


def test_regression_gets_every_figure(regression):
    folder, paths, _ = regression
    _check_pngs(paths, folder, ALL)
    runs = pd.read_csv(folder / "runs.csv")
    assert "val_accuracy" not in runs.columns
    table = heatmap_values(runs, "lr", "batch_size", None, "val_loss")[None]
    assert table.loc[32, 0.01] == pytest.approx(
        runs[(runs["lr"] == 0.01) & (runs["batch_size"] == 32) & (runs["status"] == "ok")]["val_loss"].mean())


def test_one_searched_parameter_skips_the_heatmap(single):
    folder, paths, _ = single
    _check_pngs(paths, folder, ALL - {"heatmap.png", "importance.png"})  # 2 configurations say nothing of variance


def test_labels_and_log_scale_detection():
    assert param_label({"lr": 0.1, "batch_size": 32}, ["lr", "batch_size"]) == "lr=0.1, batch_size=32"
    assert param_label({}, []) == "default settings"
    assert is_geometric([0.01, 0.05, 0.1]) and is_geometric([16, 32, 64]) and is_geometric([32, 128])
    assert not is_geometric([10, 20, 30]) and not is_geometric([0.0, 0.2, 0.5]) and not is_geometric(["relu", "tanh"])


def test_figures_drawn_in_two_tasks_are_the_same_pngs(classification, tmp_path):
    # Two tasks at once, as on the search's worker processes (threads here: the drawing is the same code, and
    # what a task sends back is checked to pickle, as a process pool would need; test_cli runs the real thing
    # on two worker processes).
    import pickle
    from concurrent.futures import ThreadPoolExecutor

    from tuning.plots import _draw_in_worker
    from tuning.report import render

    folder = tmp_path / "pool"
    shutil.copytree(classification[0], folder)
    shutil.rmtree(folder / "plots")
    with ThreadPoolExecutor(2) as pool:
        results, paths, _ = render(folder, pool=pool)
    assert {p.name for p in paths} == ALL
    for path in paths:
        assert path.read_bytes() == (classification[0] / "plots" / path.name).read_bytes(), path.name
    assert "importance" in results.__dict__  # computed once, in the task that drew its figure
    pd.testing.assert_frame_equal(results.importance, read_results(classification[0]).importance)
    assert pd.read_csv(folder / "importance.csv")["param"].tolist() == results.importance["param"].tolist()
    sent = pickle.loads(pickle.dumps(_draw_in_worker(folder, ("importance.png",))))
    assert sent[0] == ["importance.png"]
    pd.testing.assert_frame_equal(sent[1], results.importance)
