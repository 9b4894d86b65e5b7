"""The experiment folder is this experiment's: refused when it is a file, holds another run's files or
another config, or was run on data that has changed since; the check holds under the folder's lock."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from framework import TrainingDiverged
from tests.helpers import QUICK, assert_one_line_error, file_bytes, main, run_quick, sets
from tuning import refit
from tuning.config import load_experiment
from tuning.errors import RunFailed, UserError
from tuning.prepare import prepare
from tuning.runner import run_experiment


def test_out_naming_an_existing_file_is_refused(tmp_path):
    (tmp_path / "exp").write_text("my notes")
    result = main("run", "--out", tmp_path / "exp", *sets(QUICK))
    assert_one_line_error(result, "is a file, not a folder")
    assert (tmp_path / "exp").read_text() == "my notes"


@pytest.mark.parametrize("found", ["runs.csv", "history.csv", "model.npz"])
def test_another_runs_files_without_a_config_are_refused_before_anything_is_written(tmp_path, found):
    folder = tmp_path / "exp"
    folder.mkdir()
    (folder / found).write_text("trial_id,lr\nabc,0.1\n")
    result = main("run", "--out", folder, *sets(QUICK))
    assert_one_line_error(result, f"holds {found} but no config.toml")
    assert sorted(p.name for p in folder.iterdir()) == [found]  # no config.toml, no .lock
    run_quick(folder, QUICK, force=True)  # force moves them aside
    assert len(list(folder.glob(f"replaced-*/{found}"))) == 1


def test_a_resume_on_changed_data_is_refused_naming_the_file(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "data.csv"
    frame = pd.DataFrame({"label": rng.integers(0, 2, 60), "a": rng.random(60), "b": rng.random(60)})
    frame.to_csv(path, index=False)
    overrides = [*QUICK[1:], f"data.dataset={str(path)!r}"]
    run_quick(tmp_path / "exp", overrides)
    assert json.loads((tmp_path / "exp" / "data.json").read_text())["rows"] == 60
    frame.loc[7, "a"] = 0.5  # one cell edited
    frame.to_csv(path, index=False)
    before = file_bytes(tmp_path / "exp")
    result = main("run", "--out", tmp_path / "exp", *sets(overrides))
    assert_one_line_error(result, f"'{path}' changed since the first run into this folder")
    assert file_bytes(tmp_path / "exp") == before
    run_quick(tmp_path / "exp", overrides, force=True)


def test_the_folder_check_is_made_again_under_the_lock(tmp_path):
    # Two runs prepared (and checked) while the folder was empty: whichever locks it second must not
    # write into the first one's experiment, as a run waiting for Dask workers used to.
    first = load_experiment(None, QUICK)
    second = load_experiment(None, [*QUICK, "train.epochs=3"])
    prep_first, prep_second = prepare(first, tmp_path / "exp"), prepare(second, tmp_path / "exp")
    run_experiment(first, prepared=prep_first, render_report=False)
    before = file_bytes(tmp_path / "exp")
    with pytest.raises(UserError, match=r"different config \(train.epochs: 8 -> 3\)"):
        run_experiment(second, prepared=prep_second, render_report=False)
    assert file_bytes(tmp_path / "exp") == before


def test_when_every_trial_diverges_the_run_exits_1_and_keeps_what_it_stored(tmp_path):
    folder = tmp_path / "exp"
    result = main("run", "--out", folder, *sets([*QUICK, "search.space={lr = [1e6, 1e7]}"]))
    assert_one_line_error(result, "nothing could be selected: all 4 trials failed or diverged; 4 x 'loss", code=1)
    assert len(pd.read_csv(folder / "runs.csv")) == 4 and (folder / "history.csv").exists()
    assert not (folder / "best.json").exists() and not (folder / "model.npz").exists()
    assert "None: nothing could be selected: all 4 trials failed or diverged" in (folder / "report.md").read_text()


def test_a_diverging_refit_exits_1_and_keeps_the_trials(tmp_path, monkeypatch):
    real = refit.build_model

    def diverging(*args, **kwargs):
        model = real(*args, **kwargs)
        model.fit = lambda *a, **k: (_ for _ in ()).throw(TrainingDiverged("loss became nan", 3, 0, np.nan))
        return model

    monkeypatch.setattr(refit, "build_model", diverging)
    with pytest.raises(RunFailed, match=r"the final refit .* on every non-test row diverged \(loss became nan\)"):
        run_quick(tmp_path / "exp", QUICK)
    assert len(pd.read_csv(tmp_path / "exp" / "runs.csv")) == 8
    result = main("run", "--out", tmp_path / "exp", *sets(QUICK))  # resumes: nothing to train, the refit again
    assert_one_line_error(result, "the final refit", code=1)
    assert "## Leaderboard" in (tmp_path / "exp" / "report.md").read_text()  # report.md still drawn
