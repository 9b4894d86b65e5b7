"""A user's own table: text labels and features, gaps, a pandas index, folds, and predict by column name."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from framework import load_model
from tests.helpers import assert_one_line_error, assert_same_csvs, main, penguins_frame, read_csv, run_quick, sets
from tuning.config import load_experiment
from tuning.datasets import load_dataset
from tuning.errors import TuningWarning

FAST = ["train.epochs=15", "search.repeats=1", "search.n_jobs=1", "search.space={lr = [0.05, 0.1]}"]


@pytest.fixture(scope="module")
def penguins(tmp_path_factory):
    """The table as a CSV, and the experiment the CLI ran on it with nothing but its path and label."""
    base = tmp_path_factory.mktemp("tables")
    penguins_frame().to_csv(base / "penguins.csv", index=False)
    result = main("run", "--out", base / "exp", "--set", f"data.dataset='{base / 'penguins.csv'}'",
                  "--set", "data.target=species", *sets(FAST))
    assert result.returncode == 0, result.stderr
    return base


def test_text_labels_text_features_and_gaps_need_no_step(penguins):
    best = json.loads((penguins / "exp" / "best.json").read_text())
    assert best["test_accuracy"] > 0.8  # chance is 1/3
    predictions = pd.read_csv(penguins / "exp" / "test_predictions.csv")
    assert set(predictions["true"]) == {"Adelie", "Chinstrap", "Gentoo"}  # classes keep their names
    columns = [c["name"] for c in load_model(penguins / "exp" / "model.npz").metadata["preprocessor"]["columns"]]
    assert columns == ["island", "bill_length_mm", "flipper_length_mm", "body_mass_g", "sex"]


def test_the_model_predicts_the_raw_rows_as_the_run_did_columns_shuffled_label_included(penguins, tmp_path):
    predictions = pd.read_csv(penguins / "exp" / "test_predictions.csv")
    raw = pd.read_csv(penguins / "penguins.csv").iloc[predictions["source_row"]]
    raw[list(np.random.default_rng(1).permutation(raw.columns))].to_csv(tmp_path / "rows.csv", index=False)
    result = main("predict", penguins / "exp" / "model.npz", tmp_path / "rows.csv", "--json")
    assert result.returncode == 0, result.stderr
    assert "'species' are not the model's: left out" in result.stderr  # the label column, noted
    answers = json.loads(result.stdout)
    assert [a["predicted"] for a in answers] == predictions["predicted"].tolist()
    np.testing.assert_allclose([a["probability"] for a in answers], predictions["probability"], rtol=1e-6)


def test_a_missing_column_is_an_error_naming_it(penguins, tmp_path):
    pd.read_csv(penguins / "penguins.csv").drop(columns=["island", "sex"]).head(3).to_csv(tmp_path / "r.csv",
                                                                                             index=False)
    assert_one_line_error(main("predict", penguins / "exp" / "model.npz", tmp_path / "r.csv"),
                          "lacks the column(s) 'island', 'sex' the model was trained on")
    pd.read_csv(penguins / "penguins.csv").head(3).to_csv(tmp_path / "h.csv", index=False, header=False)
    assert_one_line_error(main("predict", penguins / "exp" / "model.npz", tmp_path / "h.csv"),
                          "has no header naming the model's columns")


def test_an_unseen_category_is_encoded_as_none_with_a_warning(penguins, tmp_path):
    frame = pd.read_csv(penguins / "penguins.csv").head(2)
    frame.loc[0, "island"] = "Atlantis"
    frame.to_csv(tmp_path / "r.csv", index=False)
    result = main("predict", penguins / "exp" / "model.npz", tmp_path / "r.csv")
    assert result.returncode == 0 and "column 'island' has 1 value(s) unseen in training ('Atlantis')" in result.stderr


def test_a_pandas_index_is_not_a_feature(tmp_path):
    penguins_frame().to_csv(tmp_path / "with_index.csv")  # pandas writes its index as a first, unnamed column
    dataset = load_dataset(str(tmp_path / "with_index.csv"), target="species")
    assert "Unnamed: 0" not in dataset.X.columns
    assert "column 'Unnamed: 0' is a row number, not a feature: dropped" in dataset.notes
    numbered = penguins_frame().assign(id=np.arange(1, 241))
    dataset = load_dataset(str(_csv(numbered, tmp_path / "numbered.csv")), target="species")
    assert "id" not in dataset.X.columns and any("'id' is a row number" in note for note in dataset.notes)


def _csv(frame: pd.DataFrame, path) -> object:
    frame.to_csv(path, index=False)
    return path


def test_the_default_label_skips_the_index_and_the_name_is_the_datasets(tmp_path):
    frame = penguins_frame()[["species", "island", "bill_length_mm"]]
    frame.to_csv(tmp_path / "birds.csv")
    experiment = load_experiment(None, [f"data.dataset='{tmp_path / 'birds.csv'}'"])
    assert experiment.name == "birds" and load_experiment(None, ["data.dataset=iris"]).name == "iris"
    assert load_dataset(str(tmp_path / "birds.csv")).label == "species"


def test_a_dataset_path_in_a_config_file_is_looked_up_beside_it(tmp_path, monkeypatch):
    (tmp_path / "project").mkdir()
    penguins_frame().to_csv(tmp_path / "project" / "penguins.csv", index=False)
    (tmp_path / "project" / "exp.toml").write_text('[data]\ndataset = "penguins.csv"\ntarget = "species"\n')
    monkeypatch.chdir(tmp_path)  # elsewhere: the path means the file's folder
    experiment = load_experiment(tmp_path / "project" / "exp.toml")
    assert experiment.data["dataset"] == str(tmp_path / "project" / "penguins.csv")


def test_missing_values_modes(tmp_path):
    frame = penguins_frame()
    path = _csv(frame, tmp_path / "p.csv")
    assert len(load_dataset(str(path), target="species").y) == 240  # imputed
    complete = len(frame.dropna())
    dataset = load_dataset(str(path), target="species", missing="drop_rows")
    assert len(dataset.y) == complete and f"{240 - complete} row(s) with missing values left out" in dataset.notes[0]
    with pytest.raises(Exception, match=r"column 'bill_length_mm' has 8 missing values; expected none"):
        load_dataset(str(path), target="species", missing="error")


def test_categorical_and_drop_override_the_guess(tmp_path):
    frame = penguins_frame().assign(year=np.random.default_rng(0).choice([2007, 2008, 2009], 240))
    path = _csv(frame, tmp_path / "p.csv")
    dataset = load_dataset(str(path), target="species", categorical=["year"], drop=["sex"])
    assert dataset.roles["year"] == "categorical" and "sex" not in dataset.X.columns
    with pytest.raises(Exception, match="has no column 'colour'"):
        load_dataset(str(path), target="species", drop=["colour"])


def test_a_feature_that_gives_the_label_away_is_flagged(tmp_path):
    frame = penguins_frame().assign(tag=lambda f: f["species"].str[:2] + "-x")
    path = _csv(frame, tmp_path / "leaky.csv")
    result = main("run", "--out", tmp_path / "exp", "--set", f"data.dataset='{path}'", "--set", "data.target=species",
                  *sets(FAST))
    assert result.returncode == 0, result.stderr
    assert "note: column 'tag' predicts the label perfectly by itself: a likely leak" in result.stderr
    assert "column 'tag' predicts the label perfectly" in (tmp_path / "exp" / "report.md").read_text()


def test_string_labels_in_an_npz_keep_their_names(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.choice(["cat", "dog"], 120)
    X = rng.normal(size=(120, 3)) + (y == "dog")[:, None]
    np.savez(tmp_path / "pets.npz", X=X, y=y)
    result = run_quick(tmp_path / "exp", [f"data.dataset='{tmp_path / 'pets.npz'}'", *FAST])
    assert set(pd.read_csv(tmp_path / "exp" / "test_predictions.csv")["predicted"]) <= {"cat", "dog"}
    assert result.best["test_accuracy"] > 0.6


CV = ["data.dataset=iris", "data.folds=5", "train.epochs=6", "search.repeats=2", "search.n_jobs=1",
      "search.space={lr = [0.05, 0.2]}"]


@pytest.fixture(scope="module")
def folded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("folds") / "one"
    run_quick(folder, CV)
    return folder


def test_folds_are_trials_with_their_own_rows_and_seeds(folded):
    runs = read_csv(folded / "runs.csv")
    assert len(runs) == 2 * 2 * 5 and list(runs.columns[:5]) == ["trial_id", "config_id", "repeat", "fold", "seed"]
    per_config = runs.groupby(["config_id", "repeat"])["fold"].apply(sorted)
    assert all(folds == [0, 1, 2, 3, 4] for folds in per_config)
    assert runs["trial_id"].is_unique and runs["seed"].is_unique
    best = json.loads((folded / "best.json").read_text())
    assert best["n_repeats"] == 10 and best["run"]["folds"] == 5  # a mean over folds x repeats
    assert best["refit_rows"] == 120  # every non-test row


def test_folds_give_the_same_csvs_at_n_jobs_2(folded, tmp_path):
    run_quick(tmp_path / "two", [*CV, "search.n_jobs=2"])
    assert_same_csvs(folded, tmp_path / "two")


@pytest.mark.slow
def test_folds_resume_after_a_kill_as_if_never_interrupted(folded, tmp_path):
    from tests.helpers import kill_after_rows

    kill_after_rows(7, "run", "--out", tmp_path / "exp", *sets([*CV, "search.n_jobs=2"]))
    assert len(read_csv(tmp_path / "exp" / "runs.csv")) == 7
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TuningWarning)
        run_quick(tmp_path / "exp", CV)
    assert_same_csvs(folded, tmp_path / "exp")
