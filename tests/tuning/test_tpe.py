"""TPE search: Optuna proposes in batches told back in order; the CSVs do not depend on n_jobs or a kill."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.helpers import assert_same_csvs, kill_after_rows, read_csv, run_quick, sets
from tuning.config import load_experiment
from tuning.errors import ConfigError

TPE = ["data.dataset=iris", "search.strategy=tpe", "search.n_trials=10", "search.batch=4", "train.epochs=5",
       "search.repeats=1", "search.n_jobs=1",
       "search.space={lr = {low = 0.001, high = 0.5, log = true}, hidden_units = {low = 4, high = 32}, "
       "optimizer = ['sgd', 'adam'], momentum = [0.5, 0.9]}"]


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tpe") / "one"
    return run_quick(folder, TPE), folder


def test_tpe_tries_n_trials_distinct_configurations_with_conditional_settings(serial):
    _, folder = serial
    runs = read_csv(folder / "runs.csv")
    assert len(runs) == 10 and runs["config_id"].tolist() == list(range(10))
    params = runs[["lr", "hidden_units", "optimizer", "momentum"]].astype(str).agg("|".join, axis=1)
    assert params.is_unique
    assert (runs.loc[runs["optimizer"] == "adam", "momentum"] == "").all()  # no momentum under Adam: empty
    assert (runs.loc[runs["optimizer"] == "sgd", "momentum"] != "").all()


def test_tpe_gives_the_same_csvs_at_n_jobs_2(serial, tmp_path):
    _, one = serial
    run_quick(tmp_path / "two", [*TPE, "search.n_jobs=2"])
    assert_same_csvs(one, tmp_path / "two")


@pytest.mark.slow
def test_tpe_resumes_after_a_kill_as_if_never_interrupted(serial, tmp_path):
    _, one = serial
    kill_after_rows(6, "run", "--out", tmp_path / "exp", *sets([*TPE, "search.n_jobs=2"]))  # mid second batch
    assert len(read_csv(tmp_path / "exp" / "runs.csv")) == 6
    result = run_quick(tmp_path / "exp", TPE)
    assert result.n_resumed == 6 and result.n_run == 4
    assert_same_csvs(one, tmp_path / "exp")


def test_halving_can_take_tpes_candidates_as_its_first_rung(tmp_path):
    overrides = [*TPE, "search.strategy=halving", "search.sampler=tpe", "search.n_trials=9", "search.batch=3",
                 "train.epochs=9", "search.min_epochs=1", "search.eta=3"]
    run_quick(tmp_path / "one", overrides)
    rungs = pd.read_csv(tmp_path / "one" / "rungs.csv")
    assert rungs.groupby("rung").size().to_dict() == {0: 9, 1: 3, 2: 1}
    run_quick(tmp_path / "two", [*overrides, "search.n_jobs=2"])
    assert_same_csvs(tmp_path / "one", tmp_path / "two", ("runs.csv", "rungs.csv", "history.csv"))


def test_a_space_with_fewer_configurations_than_n_trials_is_refused():
    with pytest.raises(ConfigError, match=r"holds only 4 distinct configurations, fewer than search.n_trials = 10"):
        load_experiment(None, [*TPE, "search.space={lr = [0.1, 0.2], hidden_units = [8, 16]}"])


@pytest.mark.parametrize(("batch", "random"), [(1, 10), (3, 9), (8, 8), (10, 10), (20, 20)])
def test_tpe_models_after_whole_batches_of_random_draws(batch, random):
    from tuning.tpe import random_trials

    assert random_trials(batch) == random
