"""Where trials run: in this process, in local worker processes (joblib's loky), or on a Dask cluster.

Every executor shares one interface: `run(specs, data)` yields each `TrialRecord` as its trial
finishes (in no particular order), so the parent can store it at once (`data` holds a TrialData
per fold, one for a holdout split, and a trial trains on `data[spec.fold]`); `workers` says how many
trials run at a time; `with` closes it. `open_executor` picks one from the experiment's search
settings. Every backend runs the same `run_trial` with one BLAS thread, so the records are the
same bit for bit whichever backend, worker count or machine ran them (given the same versions).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .store import SCRATCH_PREFIX
from .trial import TrialRecord, TrialSpec, run_trial
from .trial_data import TrialData

# One BLAS thread per trial whatever n_jobs is: multi-threaded BLAS sums in another order, and
# results must not depend on n_jobs. Parallelism comes from running trials side by side.
TRIAL_BLAS_THREADS = 1
WORKER_IDLE_SECONDS = 300  # an idle local worker ends after this; the next search in this process reuses it
WATCH_SECONDS = 0.5  # how often a worker checks that the search process is still alive


def worker_count(n_jobs: int, n_tasks: int) -> int:
    """Workers that will run `n_tasks` trials: n_jobs resolved by joblib (-1 = all cores), at most n_tasks."""
    import joblib

    return max(1, min(joblib.effective_n_jobs(n_jobs), n_tasks))


class Executor:
    """Base: the `with` protocol, and the scratch folder where data is memory-mapped for local workers."""

    def __init__(self, scratch_parent: Path | None = None) -> None:
        self._scratch_parent = scratch_parent
        self._scratch: Path | None = None
        self._shared: dict[int, tuple[TrialData, TrialData]] = {}  # id(data) -> (data, its mapped copy)

    @property
    def workers(self) -> int:
        """Trials that run at a time."""
        raise NotImplementedError

    def run(self, specs: list[TrialSpec], data: list[TrialData]) -> Iterator[TrialRecord]:
        """Run the trials, yielding each record as it finishes; closing the iterator cancels the rest."""
        raise NotImplementedError

    def shared(self, data: TrialData) -> TrialData:
        """`data` backed by memory-mapped files in this executor's scratch folder, written once per data object."""
        if data.files:
            return data
        cached = self._shared.get(id(data))
        if cached is None:
            if self._scratch is None:
                self._scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=self._scratch_parent))
            # Holding `data` keeps its id from being reused by another object.
            cached = self._shared[id(data)] = (data, data.share(self._scratch / str(len(self._shared))))
            data.release()  # workers read the files; this process rebuilds the rows only if it needs them again
        return cached[1]

    def plot_pool(self):
        """Worker processes the plots can be drawn on (a concurrent.futures executor), or None: draw here."""
        return None

    def close(self) -> None:
        """Release workers and remove the scratch folder."""
        self._shared.clear()
        scratch, self._scratch = self._scratch, None
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LocalPool(Executor):
    """`n_jobs` local worker processes (joblib's loky; -1 = all cores), or this process when one suffices.

    A worker that dies mid-trial (killed, out of memory) breaks the pool, and every trial it and the other
    workers were running fails with it: each is run again once, alone, so only a trial that kills its
    worker again is stored as failed, and the search goes on. Workers end within a second of this
    process if it is killed (see `_watch_parent`). `task` is the function trials run (tests give others).
    """

    def __init__(self, n_jobs: int = 1, scratch_parent: Path | None = None, task=None) -> None:
        super().__init__(scratch_parent)
        self.n_jobs, self._task = n_jobs, task
        self._started = False  # whether the search started workers (which the plots may then use)

    @property
    def task(self):
        return self._task or run_trial

    @property
    def workers(self) -> int:
        import joblib

        return max(1, joblib.effective_n_jobs(self.n_jobs))

    def plot_pool(self):
        """The search's own workers, two or more: they draw the figures at once while this process waits (and
        never imports matplotlib). The figures are drawn here instead where that is cheaper: with one worker,
        none started (trials run here, or all resumed), or matplotlib already imported here (a notebook, a
        script that plots), as each worker would pay its import (and scikit-learn's, for the importance)."""
        if not self._started or self.workers < 2 or "matplotlib.figure" in sys.modules:
            return None
        return _pool(self.workers)

    def run(self, specs: list[TrialSpec], data: list[TrialData]) -> Iterator[TrialRecord]:
        workers = min(self.workers, len(specs))
        if workers <= 1:
            yield from (self.task(spec, data[spec.fold], TRIAL_BLAS_THREADS) for spec in specs)
            return
        self._started = True
        shared = [self.shared(fold) for fold in data]  # workers map the arrays instead of receiving copies
        queue = list(reversed(specs))
        while queue:
            suspects = yield from self._run_pool(queue, shared, workers)
            for spec in suspects:  # alone on a fresh pool: a second death is this trial's doing
                yield from self._run_alone(spec, shared)

    def _run_pool(self, queue: list[TrialSpec], data: list[TrialData], workers: int) -> Iterator[TrialRecord]:
        """Keep every worker busy (a trial running, one queued, so no worker waits on this process), yielding
        records as they finish, until the queue is empty or a worker dies; returns the trials that were
        running or queued when it died."""
        from concurrent.futures import FIRST_COMPLETED, wait

        from joblib.externals.loky.process_executor import BrokenProcessPool

        executor = _pool(workers)
        running: dict = {}  # future -> spec
        try:
            while queue or running:
                while queue and len(running) < 2 * workers:  # one running and one queued per worker
                    spec = queue.pop()
                    running[executor.submit(self.task, spec, data[spec.fold], TRIAL_BLAS_THREADS)] = spec
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    spec = running.pop(future)
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        return [spec, *running.values()]
            return []
        except BaseException:  # Ctrl-C, or the consumer stopped: trials still running are of no use
            executor.shutdown(wait=False, kill_workers=True)
            raise

    def _run_alone(self, spec: TrialSpec, data: list[TrialData]) -> Iterator[TrialRecord]:
        from joblib.externals.loky.process_executor import BrokenProcessPool

        try:
            yield _pool(1).submit(self.task, spec, data[spec.fold], TRIAL_BLAS_THREADS).result()
        except BrokenProcessPool as exc:
            yield TrialRecord.failed(spec.trial_id, f"WorkerDied: the worker process running this trial died twice "
                                                    f"(killed, or out of memory?): {exc}")


def _pool(workers: int):
    """loky's reusable pool of `workers` processes (started anew after a worker died), each watching this one."""
    from joblib.externals.loky import get_reusable_executor

    return get_reusable_executor(max_workers=workers, timeout=WORKER_IDLE_SECONDS, initializer=_watch_parent,
                                 initargs=(os.getpid(),))


def release_workers() -> None:
    """End this process's idle local workers now, without waiting for them (they have no trial left: loky's
    exit handler would otherwise send each a stop and join it, a few tenths of a second at exit). For a
    process about to end; a later search in this process starts a new pool."""
    reusable = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(reusable, "_executor", None)
    if executor is None:
        return
    workers = list(getattr(executor, "_processes", {}))  # their pids
    executor.shutdown(wait=False, kill_workers=True)
    for pid in workers:  # now: shutdown's own kill waits for its manager thread, which may not run before exit,
        try:  # and a live worker holds our stdout and stderr open (a pipe's reader would wait for it)
            os.kill(pid, signal.SIGKILL)
        except OSError:  # gone already
            pass


def _watch_parent(parent: int) -> None:
    """In each worker: end the process when `parent` (the search) is gone, killed or not, instead of
    running its trial to the end for nobody. A daemon thread polls, as a pipe would only tell when
    the worker next reads its next task."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="watch-parent").start()


def open_executor(search: dict, n_tasks: int, scratch_parent: Path | None = None) -> Executor:
    """The executor the search settings ask for (`backend`, `n_jobs`, `scheduler`), for about `n_tasks` trials.

    A Dask executor connects (or starts its local cluster) here, so an unreachable scheduler fails
    before anything is written.
    """
    if search["backend"] == "dask":
        from .dask_cluster import DaskCluster

        return DaskCluster(search["scheduler"], worker_count(search["n_jobs"], n_tasks), scratch_parent).open()
    return LocalPool(search["n_jobs"], scratch_parent)
