"""The Python API a notebook uses: Experiment, run, load_results, load_predictor; and the package itself."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import tuning
from tests.helpers import ROOT, main, penguins_frame, read_csv
from tuning.progress import BestSoFar
from tuning.trial import TrialRecord, TrialStatus

SMALL = {"train": {"epochs": 6}, "search": {"repeats": 2, "n_jobs": 1, "space": {"lr": [0.05, 0.2]}}}


@pytest.fixture(scope="module")
def penguins(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api") / "penguins"
    experiment = tuning.Experiment.from_dict({**SMALL, "data": {"dataset": penguins_frame(), "target": "species"}})
    return tuning.run(experiment, out=folder), folder


def test_a_bad_key_or_value_raises_config_error_naming_it():
    with pytest.raises(tuning.ConfigError, match=r"unknown key 'train.lrr' \(did you mean 'lr'\?\)"):
        tuning.Experiment.from_dict({"train": {"lrr": 0.1}})
    with pytest.raises(tuning.ConfigError, match=r"train.epochs must be an integer >= 1, got 0"):
        tuning.Experiment.from_dict({"train": {"epochs": 0}})
    with pytest.raises(tuning.ConfigError, match="data.dataset must be a name, a path or a pandas DataFrame"):
        tuning.Experiment.from_dict({"data": {"dataset": [1, 2]}})


def test_from_toml_is_the_experiment_file(tmp_path):
    (tmp_path / "exp.toml").write_text('[train]\nepochs = 4\n')
    assert tuning.Experiment.from_toml(tmp_path / "exp.toml") == tuning.Experiment.from_dict({"train": {"epochs": 4}})


def test_run_returns_the_folders_csvs_and_load_results_the_same(penguins):
    result, folder = penguins
    assert result.experiment.name == "dataframe" and result.summary.n_run == 4
    pd.testing.assert_frame_equal(result.runs, pd.read_csv(folder / "runs.csv"))
    pd.testing.assert_frame_equal(result.history, pd.read_csv(folder / "history.csv"))
    again = tuning.load_results(folder)
    for name in ("runs", "history", "leaderboard"):
        pd.testing.assert_frame_equal(getattr(result, name), getattr(again, name))
    assert result.best == again.best == json.loads((folder / "best.json").read_text())
    assert set(result.test_scores) >= {"test_loss", "test_accuracy", "test_f1"}


def test_the_predictor_gives_the_runs_test_predictions_from_a_dataframe(penguins):
    result, folder = penguins
    predictions = read_csv(folder / "test_predictions.csv")
    rows = penguins_frame().iloc[predictions["source_row"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tuning.TuningWarning)  # the label column is left out, with a warning
        probabilities = tuning.load_predictor(folder / "model.npz").predict(rows)
    predicted = [result.predictor.classes[i] for i in probabilities.argmax(axis=1)]
    assert predicted == predictions["predicted"].tolist()


def test_every_plot_is_a_figure(penguins):
    from matplotlib.figure import Figure

    result, _ = penguins
    assert all(isinstance(f(), Figure) for f in (result.plot_learning_curves, result.plot_train_vs_val,
                                                 result.plot_param_effects, result.plot_final_model))
    assert result.plot_heatmap() is None and result.plot_rungs() is None  # one searched parameter; no halving


def test_api_errors_speak_python_and_the_cli_speaks_flags(penguins, tmp_path):
    result, folder = penguins
    other = tuning.Experiment.from_dict({**SMALL, "data": {"dataset": "iris"}})
    with pytest.raises(tuning.UserError, match=r"use force=True to replace it .* or choose another out= folder"):
        tuning.run(other, out=folder)
    cli = main("run", "--out", folder, "--set", "data.dataset=iris")
    assert "use --force to replace it" in cli.stderr and "choose another --out" in cli.stderr
    assert "force=True" not in cli.stderr


def test_the_best_so_far_never_drops():
    # The mean of a configuration whose trials are all back, as selection will use: not the best single trial.
    from tuning.objective import Objective

    best = BestSoFar(Objective.for_task("classification"), {"a": (0, 0), "b": (0, 1), "c": (1, 0), "d": (1, 1)}, 2)
    shown = []
    for trial, score in (("a", 0.99), ("c", 0.80), ("b", 0.70), ("d", 0.82)):
        best.add(TrialRecord(trial, TrialStatus.OK, metrics={"val_accuracy": score}))
        shown.append(best.best)
    assert shown == [None, None, pytest.approx(0.845), pytest.approx(0.845)]  # config 0: 0.845, config 1: 0.81


def test_import_tuning_is_light():
    code = "import sys, tuning; print([m for m in ('numpy', 'pandas', 'sklearn') if m in sys.modules])"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True).stdout.strip() == "[]"


def test_load_model_warns_once_that_raw_rows_need_the_predictor(penguins):
    from framework import load_model

    _, folder = penguins
    model = load_model(folder / "model.npz")
    with pytest.warns(UserWarning, match=r"trained on preprocessed inputs.*tuning.load_predictor\('model.npz'\)"):
        model.predict(np.zeros((1, model.n_in)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict(np.zeros((1, model.n_in)))  # once only


@pytest.mark.slow
def _can_build_wheels_here() -> bool:
    """Whether this environment's setuptools builds a wheel by itself: from 70.1 on, or with `wheel` installed
    (a fresh venv's setuptools 65 has neither, and pip then needs an isolated build environment)."""
    import importlib.util

    try:
        import setuptools
    except ImportError:
        return False
    major, minor = (int(part) for part in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


def test_the_package_installs_and_runs_from_another_folder(tmp_path):
    target = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(ROOT)]
    if _can_build_wheels_here():
        install.insert(4, "--no-build-isolation")  # build with this environment's setuptools: no download
    assert subprocess.run(install, capture_output=True, text=True).returncode == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    found = subprocess.run([sys.executable, "-c", "import tuning, framework; print(tuning.__file__)"], cwd=elsewhere,
                           env=env, capture_output=True, text=True)
    assert found.stdout.startswith(str(target)), found.stderr
    run = subprocess.run([str(target / "bin" / "mlp-tuner"), "run", "--set", "train.epochs=2", "--set",
                          "data.dataset=iris", "--set", "search.repeats=1", "--set", "search.space={lr = [0.1]}"],
                         cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert (elsewhere / "results" / "iris" / "model.npz").is_file()
