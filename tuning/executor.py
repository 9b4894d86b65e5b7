"""Where trials run: in this process, in local worker processes (joblib's loky), or on a Dask cluster.

Every executor shares one interface: `run(specs, data)` yields each `TrialRecord` as its trial
finishes (in no particular order), so the parent can store it at once; `workers` says how many
trials run at a time; `with` closes it. `open_executor` picks one from the experiment's search
settings. Every backend runs the same `run_trial` with one BLAS thread, so the records are the
same bit for bit whichever backend, worker count or machine ran them (given the same versions).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .store import SCRATCH_PREFIX
from .trial import TrialRecord, TrialSpec, run_trial
from .trial_data import TrialData

# One BLAS thread per trial whatever n_jobs is: multi-threaded BLAS sums in another order, and
# results must not depend on n_jobs. Parallelism comes from running trials side by side.
TRIAL_BLAS_THREADS = 1


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

    def run(self, specs: list[TrialSpec], data: TrialData) -> Iterator[TrialRecord]:
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
        return cached[1]

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
    """`n_jobs` local worker processes (joblib's loky; -1 = all cores), or this process when one suffices."""

    def __init__(self, n_jobs: int = 1, scratch_parent: Path | None = None) -> None:
        super().__init__(scratch_parent)
        self.n_jobs = n_jobs

    @property
    def workers(self) -> int:
        import joblib

        return max(1, joblib.effective_n_jobs(self.n_jobs))

    def run(self, specs: list[TrialSpec], data: TrialData) -> Iterator[TrialRecord]:
        import joblib

        workers = min(self.workers, len(specs))
        if workers <= 1:
            yield from (run_trial(spec, data, TRIAL_BLAS_THREADS) for spec in specs)
            return
        shared = self.shared(data)  # workers map the arrays instead of receiving copies per trial
        # batch_size=1: a trial is a coarse task; each result is stored the moment it finishes.
        parallel = joblib.Parallel(n_jobs=workers, return_as="generator_unordered", backend="loky", batch_size=1)
        yield from parallel(joblib.delayed(run_trial)(spec, shared, TRIAL_BLAS_THREADS) for spec in specs)


def open_executor(search: dict, n_tasks: int, scratch_parent: Path | None = None) -> Executor:
    """The executor the search settings ask for (`backend`, `n_jobs`, `scheduler`), for about `n_tasks` trials.

    A Dask executor connects (or starts its local cluster) here, so an unreachable scheduler fails
    before anything is written.
    """
    if search["backend"] == "dask":
        from .dask_cluster import DaskCluster

        return DaskCluster(search["scheduler"], worker_count(search["n_jobs"], n_tasks), scratch_parent).open()
    return LocalPool(search["n_jobs"], scratch_parent)
