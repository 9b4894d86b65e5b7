"""Successive halving: rungs, continuation from saved state, budget, determinism and resume."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.helpers import assert_same_csvs, main, run_quick
from tuning import search
from tuning.config import load_experiment
from tuning.errors import TuningWarning, UserError
from tuning.halving import rung_schedule, rung_sizes

# 9 configurations x 2 repeats; rungs at 2, 6 and 12 epochs keep 9, 3, 1 configurations.
HALVING = ["data.dataset=iris", "search.strategy=halving", "search.n_jobs=1", "search.repeats=2",
           "train.epochs=12", "search.min_epochs=2", "search.eta=3",
           "search.space={lr = [0.02, 0.1, 0.3], hidden_units = [4, 8, 16]}"]


def _run(folder, overrides=HALVING, **kwargs):
    return run_quick(folder, overrides, **kwargs)


def test_schedule_and_sizes():
    assert rung_schedule(1, 3, 30) == [1, 3, 9, 27, 30]
    assert rung_schedule(3, 3, 30) == [3, 9, 27, 30]
    assert rung_schedule(30, 3, 30) == [30]
    assert rung_sizes(81, 3, 4) == [81, 27, 9, 3]
    assert rung_sizes(10, 3, 4) == [10, 4, 2, 1]


@pytest.fixture(scope="module")
def halved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("halving") / "exp"
    return _run(folder), folder


def test_every_candidate_trains_the_first_rung_and_the_best_third_go_on(halved):
    result, folder = halved
    rungs = pd.read_csv(folder / "rungs.csv")
    assert rungs.groupby("rung")["config_id"].nunique().tolist() == [9, 3, 1]
    assert rungs.groupby("rung").size().tolist() == [18, 6, 2]
    # The configurations promoted from rung 0 are its 3 best by mean validation accuracy.
    first = rungs[rungs["rung"] == 0].groupby("config_id")["val_accuracy"].mean()
    promoted = set(rungs.loc[rungs["rung"] == 1, "config_id"])
    assert first[list(promoted)].min() >= first.drop(list(promoted)).max()
    runs = pd.read_csv(folder / "runs.csv")
    assert len(runs) == 18 and runs["trial_id"].is_unique
    assert runs.groupby("rung").size().to_dict() == {0: 12, 1: 4, 2: 2}
    assert result.best["config_id"] in set(rungs.loc[rungs["rung"] == 2, "config_id"])


def test_epochs_spent_are_what_the_schedule_says(halved):
    _, folder = halved
    history = pd.read_csv(folder / "history.csv")
    assert len(history) == 18 * 2 + 6 * 4 + 2 * 6  # 72 epochs, where the full grid trains 216
    for _, epochs in history.groupby("trial_id")["epoch"]:
        assert epochs.tolist() == list(range(1, len(epochs) + 1))  # continued, never retrained from scratch
    assert set(history.groupby("trial_id")["epoch"].max()) == {2, 6, 12}


def test_a_promoted_trial_continues_from_its_weights(halved):
    _, folder = halved
    history = pd.read_csv(folder / "history.csv")
    finalist = history[history["rung"] == 2]["trial_id"].iloc[0]
    curve = history[history["trial_id"] == finalist].set_index("epoch")["loss"]
    # The first epoch of rung 1 goes on from where rung 0 ended, far below a fresh network's first epoch.
    assert curve[3] < curve[1] * 0.8 and curve[3] < curve[2] * 1.1


def test_n_jobs_1_and_2_give_identical_results(halved, tmp_path):
    _, one = halved
    _run(tmp_path / "two", [*HALVING, "search.n_jobs=2"])
    assert_same_csvs(one, tmp_path / "two", ("runs.csv", "rungs.csv", "history.csv"))


def _interrupt_in_rung_1(folder, monkeypatch) -> None:
    """Run the halving search and stop it (as Ctrl-C would) with 3 trials of rung 1 stored."""
    real = search.Tally.count

    def interrupted(tally, record):
        real(tally, record)
        if tally.done == 18 + 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(search.Tally, "count", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run(folder)
    monkeypatch.setattr(search.Tally, "count", real)


def test_resume_after_an_interruption_mid_rung(halved, tmp_path, monkeypatch):
    _, reference = halved
    _interrupt_in_rung_1(tmp_path / "exp", monkeypatch)
    stored = pd.read_csv(tmp_path / "exp" / "rungs.csv")
    assert stored.groupby("rung").size().to_dict() == {0: 18, 1: 3}
    result = _run(tmp_path / "exp")
    assert result.n_run == 26 - 21 and result.n_resumed == 21
    assert_same_csvs(reference, tmp_path / "exp", ("runs.csv", "rungs.csv", "history.csv"))
    assert not (tmp_path / "exp" / "checkpoints").exists()


def test_report_on_an_interrupted_halving_search(tmp_path, monkeypatch):
    _interrupt_in_rung_1(tmp_path / "exp", monkeypatch)
    assert not (tmp_path / "exp" / "runs.csv").exists()  # written when the search ends
    result = main("report", tmp_path / "exp")
    assert result.returncode == 0, result.stderr
    assert "successive halving interrupted at rung 1: 21 trainings of 18 trials stored" in result.stdout
    assert (tmp_path / "exp" / "plots" / "rungs.png").is_file()


@pytest.mark.parametrize("damage", ["missing", "truncated", "garbage"])
def test_a_lost_checkpoint_is_rebuilt_and_the_results_are_the_same(halved, tmp_path, monkeypatch, damage):
    _, reference = halved
    folder = tmp_path / "exp"
    _interrupt_in_rung_1(folder, monkeypatch)
    journal = pd.read_csv(folder / "rungs.csv")
    done = set(journal.loc[journal["rung"] == 1, "trial_id"])
    # A promoted trial whose rung 1 has not run yet: its rung-0 checkpoint is what rung 1 continues from.
    promoted = set(pd.read_csv(reference / "rungs.csv").query("rung == 1")["trial_id"]) - done
    path = folder / "checkpoints" / f"{sorted(promoted)[0]}-rung0.npz"
    if damage == "missing":
        path.unlink()
    else:
        path.write_bytes(path.read_bytes()[:100] if damage == "truncated" else b"garbage")
    with pytest.warns(TuningWarning, match="checkpoint of trial .* after rung 0 is missing or damaged; rebuilt"):
        _run(folder)
    assert_same_csvs(reference, folder, ("runs.csv", "rungs.csv", "history.csv"))


def test_random_candidates_and_refusals(tmp_path):
    overrides = [*HALVING, "search.n_trials=6", "search.repeats=1",
                 "search.space={lr = {low = 0.01, high = 0.5, log = true}}"]
    _run(tmp_path / "random", overrides)
    rungs = pd.read_csv(tmp_path / "random" / "rungs.csv")
    assert rungs.groupby("rung").size().tolist() == [6, 2, 1]
    assert rungs["lr"].between(0.01, 0.5).all()
    with pytest.raises(UserError, match="early_stopping must be 0"):
        load_experiment(None, [*HALVING, "train.early_stopping=3"])
