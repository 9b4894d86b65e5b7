"""The Dask backend on real local clusters: same results as local runs, a killed worker survived, clear errors.

One 2-worker LocalCluster (separate processes, one thread each) serves the tests that connect
to an existing scheduler; the empty-scheduler tests start and close their own. The run_experiment
tests need the runner to open the executor that search.backend / search.scheduler name.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from tests.helpers import QUICK, assert_one_line_error, assert_same_csvs, cli, read_csv, run_quick, sets, wait_for
from tuning import dask_cluster, versions
from tuning.config import load_experiment
from tuning.dask_cluster import DaskCluster, ScatteredData
from tuning.errors import UserError
from tuning.objective import tracked_metrics
from tuning.prepare import prepare
from tuning.store import Columns
from tuning.trial import TrialRecord
from tuning.trial_data import TrialData

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

# Slow enough (about 0.5 s a trial: iris, batch 1, 60 epochs) that a worker can be killed mid-trial.
SLOW = ["data.dataset=iris", "train.epochs=60", "train.batch_size=1", "search.repeats=2", "search.n_jobs=1",
        "search.space={lr = [0.01, 0.02], hidden_units = [8]}"]
_RUNS = Columns([], "classification", tracked_metrics("classification", 3)).runs
OUTCOME = ["trial_id", *_RUNS[_RUNS.index("status"):-1]]  # status ... best metrics, not the time


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                                  scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as c:
        with distributed.Client(c, set_as_default=False) as client:
            yield c, client


@pytest.fixture(scope="module")
def slow_local(tmp_path_factory):
    """The slow experiment run in this process (n_jobs=1): the reference results."""
    folder = tmp_path_factory.mktemp("slow") / "local"
    run_quick(folder, SLOW)
    return folder


def _dask(address: str) -> list[str]:
    return ["search.backend=\"dask\"", f"search.scheduler=\"{address}\""]


def _run(folder: Path, overrides: list[str], **kwargs) -> Path:
    run_quick(folder, overrides, **kwargs)
    return folder


def _outcomes(records: list[TrialRecord]) -> pd.DataFrame:
    rows = ({"trial_id": r.trial_id, **r.outcome()} for r in records)
    table = pd.DataFrame([{k: row.get(k, "") for k in OUTCOME} for row in rows])
    return table.sort_values("trial_id", ignore_index=True)


def _assert_same_outcomes(records: list[TrialRecord], folder: Path, failed: set[str] = frozenset()) -> None:
    """Records from an executor equal the runs.csv rows of a stored run: each trial once, same metrics
    (but for the trials in `failed`)."""
    ids = [r.trial_id for r in records]
    assert len(ids) == len(set(ids)), "a trial came back twice"
    expected = read_csv(folder / "runs.csv")
    assert set(ids) == set(expected["trial_id"]), "a trial is missing"
    expected = expected[~expected["trial_id"].isin(failed)][OUTCOME].sort_values("trial_id", ignore_index=True)
    got = _outcomes([r for r in records if r.trial_id not in failed])
    pd.testing.assert_frame_equal(got, expected, check_exact=True, check_dtype=False)


def _no_new_children(before: set[int]) -> bool:
    return _children() - before == set()


def _finished_trials(client) -> int:
    """Trial tasks the scheduler has seen finish (cumulative)."""
    def count(dask_scheduler):
        prefix = dask_scheduler.task_prefixes.get("trial")
        return prefix.state_counts["memory"] if prefix is not None else 0
    return client.run_on_scheduler(count)


def _kill_a_busy_worker(client) -> set[str]:
    """SIGKILL the process of a worker that is running a trial; return the ids of the trials it held."""
    pids = client.run(os.getpid)
    for address, keys in client.processing().items():
        if keys:
            os.kill(pids[address], signal.SIGKILL)
            return {key.split("-")[1] for key in keys}  # keys are trial-<trial_id>-<nonce>
    raise AssertionError("no trial was running on the cluster")


def _retried(client) -> int:
    """Times the scheduler saw a worker die while running a trial (each such trial is rescheduled)."""
    def count(dask_scheduler):
        prefix = dask_scheduler.task_prefixes.get("trial")
        return prefix.suspicious if prefix is not None else 0
    return client.run_on_scheduler(count)


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE}


def test_run_experiment_on_a_scheduler_writes_the_local_csvs(tmp_path, cluster, quick_overrides):
    c, client = cluster
    local = _run(tmp_path / "local", quick_overrides)
    before = _finished_trials(client)
    remote = _run(tmp_path / "dask", [*quick_overrides, *_dask(c.scheduler_address)])
    assert _finished_trials(client) - before == 8, "run_experiment did not run the trials on the cluster"
    assert_same_csvs(local, remote)


@pytest.mark.slow
def test_a_worker_killed_mid_trial_is_survived(cluster, slow_local):
    c, client = cluster
    prep = prepare(load_experiment(None, SLOW), out=slow_local)
    retried = _retried(client)
    records, killed = [], None
    with DaskCluster(c.scheduler_address) as cluster:
        for record in cluster.run(prep.specs, prep.data):
            records.append(record)
            if killed is None:
                killed = _kill_a_busy_worker(client)
    assert _retried(client) > retried  # the scheduler saw the worker die mid-trial and ran that trial again
    _assert_same_outcomes(records, slow_local)  # every trial exactly once, with the local metrics
    client.wait_for_workers(2, timeout=20)  # the nanny restarts the killed worker


@pytest.mark.slow
def test_run_experiment_survives_a_killed_worker(tmp_path, cluster, slow_local):
    c, client = cluster
    killed, retried = [], _retried(client)

    def kill_once(record, done, total):
        if not killed:
            killed.append(_kill_a_busy_worker(client))

    folder = _run(tmp_path / "dask", [*SLOW, *_dask(c.scheduler_address)], on_trial=kill_once)
    assert _retried(client) > retried
    runs = read_csv(folder / "runs.csv")
    assert runs["trial_id"].is_unique and len(runs) == 4
    assert_same_csvs(slow_local, folder)
    client.wait_for_workers(2, timeout=20)


@pytest.mark.slow
def test_a_trial_whose_workers_keep_dying_fails_and_lost_data_is_sent_again(slow_local):
    # One worker, no retries: killing it fails the trials it held (KilledWorker) and loses the only
    # copy of the scattered data, which the trials still queued need: it is scattered again for them.
    prep = prepare(load_experiment(None, SLOW), out=slow_local)
    records, killed = [], set()
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with distributed.LocalCluster(n_workers=1, processes=True, threads_per_worker=1, dashboard_address=None,
                                      scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as c:
            with distributed.Client(c, set_as_default=False) as client:
                with DaskCluster(c.scheduler_address) as cluster:
                    for record in cluster.run(prep.specs, prep.data):
                        records.append(record)
                        if not killed:
                            killed = _kill_a_busy_worker(client)
    failed = {r.trial_id for r in records if r.status == "failed"}
    assert failed and failed <= killed
    assert all("KilledWorker" in r.error for r in records if r.status == "failed")
    _assert_same_outcomes(records, slow_local, failed)


def test_run_experiment_with_an_empty_scheduler(tmp_path, quick_overrides, monkeypatch):
    clusters, real_run = [], DaskCluster.run

    def run(self, *args):
        clusters.append(self.local_cluster)
        yield from real_run(self, *args)

    monkeypatch.setattr(DaskCluster, "run", run)
    local = _run(tmp_path / "local", quick_overrides)
    before = _children()
    remote = _run(tmp_path / "dask", [*quick_overrides, *_dask("")], n_jobs=2)
    assert len(clusters) == 1 and clusters[0] is not None, "run_experiment did not open a local Dask cluster"
    assert_same_csvs(local, remote)
    wait_for(lambda: _no_new_children(before), 10, "the local Dask cluster's processes to end")


def test_closing_the_generator_early_closes_the_local_cluster(tmp_path, quick_overrides):
    prep = prepare(load_experiment(None, quick_overrides), out=tmp_path / "exp")
    before = _children()
    with DaskCluster("", n_workers=2) as cluster:
        trials = cluster.run(prep.specs, prep.data)
        next(trials)
        assert _children() - before, "no Dask worker process was started"
        trials.close()  # what an exception or Ctrl-C in the consumer leads to
    wait_for(lambda: _no_new_children(before), 10, "the local Dask cluster's processes to end")


def test_unreachable_scheduler_is_a_quick_user_error(tmp_path, quick_overrides, monkeypatch):
    monkeypatch.setattr(dask_cluster, "CONNECT_TIMEOUT", 1)
    with pytest.raises(UserError, match=r"cannot reach the Dask scheduler at 'tcp://127.0.0.1:1' within 1 s"):
        DaskCluster("tcp://127.0.0.1:1").open()
    for address in ("no-port", "http://host:8786", "tcp://[::1", "tcp://host:99999"):
        with pytest.raises(UserError, match=f"{re.escape(repr(address))} is not a Dask scheduler address"):
            DaskCluster(address).open()


def test_a_malformed_address_is_one_line_and_no_noise_at_exit(tmp_path):
    # A Client half-made of a bad address used to print "Exception ignored in ..." at interpreter exit.
    overrides = [*QUICK, "search.backend='dask'", "search.scheduler='no-port'"]
    result = cli("run", "--out", tmp_path / "exp", *sets(overrides))
    assert_one_line_error(result, "'no-port' is not a Dask scheduler address")


def test_a_cluster_with_another_numpy_is_refused(tmp_path, cluster, quick_overrides, monkeypatch):
    c, _ = cluster
    real = versions.version  # the workers read their own; this process pretends to have NumPy 0.0
    monkeypatch.setattr(versions, "version", lambda name: "0.0" if name == "numpy" else real(name))
    with pytest.raises(UserError, match=r"NumPy .*this machine .*NumPy 0.0: results would not match"):
        DaskCluster(c.scheduler_address).open()


def test_missing_dask_is_a_user_error(tmp_path, quick_overrides, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` raises ImportError
    with pytest.raises(UserError, match=r"needs dask.distributed.*pip install"):
        run_quick(tmp_path / "exp", [*quick_overrides, *_dask("")])
    assert not (tmp_path / "exp").exists()


def test_scattered_data_is_realigned_when_it_arrives():
    # Dask can deliver arrays at odd addresses (views into one receive buffer); NumPy is slow on them.
    X = np.frombuffer(bytearray(4 * 12 + 1), dtype=np.float32, offset=1).reshape(3, 4)
    y = np.arange(3)
    assert not X.flags.aligned
    scattered = ScatteredData.__new__(ScatteredData)
    scattered.__setstate__({"data": TrialData(X, y, X, y, "classification", 3)})
    assert all(getattr(scattered.data, name).flags.aligned for name in ("X_train", "y_train", "X_val", "y_val"))
    np.testing.assert_array_equal(scattered.data.X_train, X)
