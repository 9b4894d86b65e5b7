"""Local worker processes that die: a worker killed mid-trial, a trial that kills every worker it runs
on, and the search process itself killed (its workers must not outlive it)."""

from __future__ import annotations

import os
import signal

import psutil
import pytest

from tests.helpers import assert_same_csvs, kill_after_rows, read_csv, run_quick, sets, wait_for
from tuning.config import load_experiment
from tuning.executor import LocalPool
from tuning.prepare import prepare
from tuning.trial import TrialStatus, run_trial

# Trials of about half a second (iris, batch 1, 60 epochs), so a worker can be killed mid-trial.
SLOW = ["data.dataset=iris", "train.epochs=60", "train.batch_size=1", "search.repeats=2", "search.n_jobs=2",
        "search.space={lr = [0.01, 0.02], hidden_units = [8]}"]


def _workers() -> list[psutil.Process]:
    """This process's loky workers."""
    return [p for p in psutil.Process().children(recursive=True) if "loky" in " ".join(p.cmdline())]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("workers") / "serial"
    run_quick(folder, [*SLOW, "search.n_jobs=1"])
    return folder


def test_a_worker_killed_mid_trial_costs_only_a_retry(reference, tmp_path):
    killed = []

    def kill_a_worker(record, done, total):
        if not killed:
            killed.append(_workers()[0].pid)
            os.kill(killed[0], signal.SIGKILL)

    result = run_quick(tmp_path / "exp", SLOW, on_trial=kill_a_worker)
    assert killed and result.n_run == 4
    runs = read_csv(tmp_path / "exp" / "runs.csv")
    assert runs["trial_id"].is_unique and (runs["status"] == "ok").all()
    assert_same_csvs(reference, tmp_path / "exp")  # the retried trials trained from scratch, as before


def kills_its_worker_in_config_1(spec, data, blas_threads):
    """A trial task whose configuration 1 takes its worker down every time (as running out of memory would)."""
    if spec.config_id == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return run_trial(spec, data, blas_threads)


def test_a_trial_that_kills_every_worker_is_stored_as_failed_and_the_search_goes_on(reference, tmp_path):
    prep = prepare(load_experiment(None, SLOW), tmp_path / "exp")
    with LocalPool(2, tmp_path, task=kills_its_worker_in_config_1) as pool:
        records = {r.trial_id: r for r in pool.run(prep.specs, prep.data)}
    assert len(records) == 4
    expected = read_csv(reference / "runs.csv").set_index("trial_id")
    for spec in prep.specs:
        record = records[spec.trial_id]
        if spec.config_id == 1:
            assert record.status == TrialStatus.FAILED and "WorkerDied: the worker process" in record.error
        else:
            assert record.ok and record.metrics["val_loss"] == pytest.approx(expected.loc[spec.trial_id, "val_loss"],
                                                                             rel=0, abs=0)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["grid", "halving"])
def test_workers_end_soon_after_the_search_process_is_killed(tmp_path, strategy):
    overrides = [*SLOW, f"search.strategy={strategy}", "search.min_epochs=20", "train.epochs=100"]
    children = kill_after_rows(1, "run", "--out", tmp_path / "exp", *sets(overrides), group=False)
    assert children, "the run had started no workers"

    wait_for(lambda: not any(_alive(pid) for pid in children), 5, "the killed search's workers to end")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
