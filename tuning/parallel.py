"""Where trials run: in this process, in local worker processes (joblib's loky), or on a Dask cluster.

Results come back in the order trials finish, so the parent can store each at once. Every
backend runs the same `run_trial` with one BLAS thread, so the records are the same bit for
bit whichever backend, worker count or machine ran them (given the same package versions).

Dask (`backend="dask"`): `scheduler="tcp://host:8786"` connects to a running scheduler whose
workers may be on other machines: the in-memory training data is scattered once to every
worker and each task refers to it. An empty scheduler starts a `LocalCluster` for the run
(one single-threaded worker process per worker from n_jobs), closed at the end; its workers
are on this machine, so they memory-map the data files as loky workers do. The scheduler
reschedules the trial of a worker that dies (up to its `distributed.scheduler.allowed-failures`,
3 by default); a trial that kills that many workers comes back as a `failed` record.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .errors import UserError
from .trial import TrialData, run_trial

# One BLAS thread per trial whatever n_jobs is: multi-threaded BLAS sums in another order, and
# results must not depend on n_jobs. Parallelism comes from running trials side by side.
TRIAL_BLAS_THREADS = 1
BACKENDS = ("loky", "dask")
CONNECT_TIMEOUT = 5  # seconds to reach a Dask scheduler before giving up
WORKER_TIMEOUT = 30  # seconds to wait for a reachable scheduler to have at least one worker
MAX_RESENDS = 3  # times the data is scattered anew after every worker holding it died


def worker_count(n_jobs: int, n_tasks: int) -> int:
    """Workers that will run `n_tasks` trials: n_jobs resolved by joblib (-1 = all cores), at most n_tasks."""
    import joblib

    return max(1, min(joblib.effective_n_jobs(n_jobs), n_tasks))


def dispatch(specs: list[dict], data: TrialData, n_jobs: int, scratch: Path, backend: str = "loky",
             scheduler: str = "", cluster: DaskCluster | None = None) -> Iterator[dict]:
    """Run trials, yielding each `run_trial` record as it finishes (in no particular order).

    `backend` "loky": n_jobs local processes (in this process when one worker suffices).
    `backend` "dask": the cluster at `scheduler`, or a LocalCluster of n_jobs workers when it is
    empty. `cluster`, an open `DaskCluster`, is used instead of connecting anew (e.g. for several
    dispatches in one run); it is left open. `scratch` is a local folder for the memory-mapped data.
    """
    if backend not in BACKENDS:
        raise UserError(f"search.backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if not specs:
        return
    if backend == "dask" or cluster is not None:
        if cluster is not None:
            yield from cluster.run(specs, data, scratch)
            return
        with DaskCluster(scheduler, worker_count(n_jobs, len(specs))) as cluster:
            yield from cluster.run(specs, data, scratch)
        return
    yield from _dispatch_loky(specs, data, n_jobs, scratch)


def _dispatch_loky(specs: list[dict], data: TrialData, n_jobs: int, scratch: Path) -> Iterator[dict]:
    import joblib

    workers = worker_count(n_jobs, len(specs))
    if workers == 1:
        yield from (run_trial(spec, data, TRIAL_BLAS_THREADS) for spec in specs)
        return
    shared = data.share(scratch)  # workers map the arrays instead of receiving copies per trial
    # batch_size=1: a trial is a coarse task; each result is stored the moment it finishes.
    parallel = joblib.Parallel(n_jobs=workers, return_as="generator_unordered", backend="loky", batch_size=1)
    yield from parallel(joblib.delayed(run_trial)(spec, shared, TRIAL_BLAS_THREADS) for spec in specs)


SETUP_HINT = ("install this repository and the same package versions on the scheduler's and every worker's "
              "machine, and start `dask scheduler` and `dask worker` with the repository on PYTHONPATH")


def environment() -> dict:
    """What must match between this process and the Dask scheduler and workers (run there by `client.run`)."""
    import platform

    return {"python": platform.python_version(), "numpy": np.__version__}


class ScatteredData:
    """The TrialData a Dask cluster's workers hold: scattered once, realigned when it arrives.

    Dask's transfers can leave arrays at unaligned addresses (views into one receive buffer), and
    NumPy then takes slow paths (a trial on 48,000 x 784 rows ran 18x slower): unpickling on a worker
    copies each such array once into aligned memory.
    """

    def __init__(self, data: TrialData) -> None:
        self.data = data

    def __getstate__(self) -> dict:
        return {"data": self.data}

    def __setstate__(self, state: dict) -> None:
        self.data = state["data"]
        for name in ("X_train", "y_train", "X_val", "y_val"):
            setattr(self.data, name, np.require(getattr(self.data, name), requirements=["C", "A"]))


def run_scattered(spec: dict, scattered: ScatteredData, blas_threads: int | None = None) -> dict:
    """`run_trial` on the data a worker holds (a Dask task)."""
    return run_trial(spec, scattered.data, blas_threads)


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise UserError(f"search.backend = \"dask\" needs dask.distributed ({exc}); install it with "
                        "pip install 'dask[distributed]', or use backend = \"loky\"") from None
    return distributed


class DaskCluster:
    """A Dask client, and the LocalCluster it started when `scheduler` is empty; closed on exit.

    Trials are submitted with `client.submit` (one task per trial, a unique key, so never
    deduplicated or cached) and collected with `distributed.as_completed`, which yields each
    future once: a trial rescheduled after its worker died still resolves once.
    """

    def __init__(self, scheduler: str = "", n_workers: int = 1) -> None:
        self.scheduler, self.n_workers = scheduler.strip(), n_workers
        self.client = self.local_cluster = None
        self._sent: dict[tuple, tuple[TrialData, object]] = {}  # (id(data), scratch) -> (data, sent)

    def __enter__(self) -> DaskCluster:
        distributed = _import_distributed()
        try:
            if self.scheduler:
                self.client = _connect(distributed, self.scheduler)
                self._check_cluster()
            else:
                # No dashboard; the scheduler's small HTTP server (health, metrics) on any free local port.
                # Dask's warnings (e.g. tasks cancelled by Ctrl-C) stay out of the progress bar; errors show.
                self.local_cluster = distributed.LocalCluster(
                    n_workers=self.n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}, silence_logs=logging.ERROR)
                self.client = distributed.Client(self.local_cluster, set_as_default=False)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the client and, when this object started it, the local cluster (its processes end)."""
        self._sent.clear()
        client, cluster, self.client, self.local_cluster = self.client, self.local_cluster, None, None
        try:
            if client is not None:
                client.close()
        finally:
            if cluster is not None:
                cluster.close()

    @property
    def workers(self) -> int:
        """Threads (= trials at a time) the cluster has now."""
        return sum(self.client.nthreads().values())

    def _check_cluster(self) -> None:
        """A scheduler given by address: it has workers, and they and it import this code with our NumPy."""
        try:
            self.client.wait_for_workers(1, timeout=WORKER_TIMEOUT)
        except Exception:
            raise UserError(f"search.scheduler: the Dask scheduler at {self.scheduler} has no workers after "
                            f"{WORKER_TIMEOUT} s; start some with `dask worker {self.scheduler} --nthreads 1`"
                            ) from None
        try:  # the scheduler unpickles tasks too: both need `tuning` importable
            found = {"scheduler": self.client.run_on_scheduler(environment), **self.client.run(environment)}
        except Exception as exc:
            raise UserError(f"the Dask cluster at {self.scheduler} cannot import this repository "
                            f"({type(exc).__name__}: {exc}); {SETUP_HINT}") from None
        here = environment()
        for where, there in found.items():
            if there != here:
                raise UserError(f"Dask {where} runs Python {there['python']} / NumPy {there['numpy']}, this machine "
                                f"Python {here['python']} / NumPy {here['numpy']}: results would not match a local "
                                f"run; {SETUP_HINT}")

    def _data_for_workers(self, data: TrialData, scratch: Path):
        """What tasks receive as their data, made once per data object: on a local cluster, a
        memory-mapped copy (tasks carry its file paths); else a future of the in-memory arrays,
        scattered to every worker, and scattered anew if every worker holding it died."""
        key = (id(data), str(scratch))
        cached = self._sent.get(key)
        if cached is not None and (self.local_cluster is not None or cached[1].status == "finished"):
            return cached[1]
        if self.local_cluster is not None:
            sent = data if data.files else data.share(scratch)
        else:
            # Files in a local folder do not exist on other machines: send the arrays themselves.
            in_memory = dataclasses.replace(data, files={}) if data.files else data
            sent = self.client.scatter(ScatteredData(in_memory), broadcast=True, hash=False)
        self._sent[key] = (data, sent)  # holding `data` keeps its id from being reused
        return sent

    def run(self, specs: list[dict], data: TrialData, scratch: Path) -> Iterator[dict]:
        """Submit every trial and yield the records as they finish; unfinished trials are cancelled
        if the caller stops early (an exception, Ctrl-C, or closing the generator)."""
        distributed = _import_distributed()
        if self.client is None:
            raise RuntimeError("DaskCluster.run needs an open cluster: use `with DaskCluster(...) as cluster`")
        if not specs:
            return
        pending: dict[str, tuple] = {}  # task key -> (future, spec, the data it was given)

        def submit(spec: dict):
            task_data = self._data_for_workers(data, scratch)
            key = f"trial-{spec['trial_id']}-{uuid.uuid4().hex[:8]}"  # unique: never deduplicated or cached
            function = run_scattered if isinstance(task_data, distributed.Future) else run_trial
            future = self.client.submit(function, spec, task_data, TRIAL_BLAS_THREADS, key=key, pure=False)
            pending[future.key] = (future, spec, task_data)
            return future

        seen: set[str] = set()
        resends = 0
        try:
            done = distributed.as_completed([submit(spec) for spec in specs], loop=self.client.loop,
                                            with_results=True, raise_errors=False)
            for future, result in done:
                _, spec, task_data = pending.pop(future.key)
                lost_data = isinstance(task_data, distributed.Future) and task_data.status != "finished"
                if future.status != "finished" and lost_data and not _killed_worker(distributed, result):
                    # Every worker holding the scattered data died, so the scheduler dropped the trials
                    # that needed it: scatter it again (once, for the first such trial) and resubmit them.
                    if self._sent[(id(data), str(scratch))][1] is task_data:
                        resends += 1
                        if resends > MAX_RESENDS:
                            raise RuntimeError(f"the Dask workers holding the data died {resends} times; finished "
                                               "trials are stored, run again to resume")
                    done.add(submit(spec))
                    future.release()
                    continue
                record = self._record(distributed, future, result, spec)
                future.release()
                if record["trial_id"] in seen:  # cannot happen with one future per trial; never store twice
                    continue
                seen.add(record["trial_id"])
                yield record
        finally:
            if pending and self.client is not None and self.client.status == "running":
                self.client.cancel([f for f, _, _ in pending.values()])

    def _record(self, distributed, future, result, spec: dict) -> dict:
        if future.status == "finished":
            return result
        exc = _exception(result)
        if isinstance(exc, distributed.KilledWorker):
            # The scheduler ran the trial on `allowed-failures` + 1 workers and each died (out of memory?):
            # the trial, not the cluster, is the likely cause, so it is a failed trial and the search goes on.
            return {"trial_id": spec["trial_id"], "status": "failed", "epochs": 0, "final_epoch": 0,
                    "fit_seconds": 0.0, "history": [],
                    "error": f"KilledWorker: every Dask worker that ran this trial died ({exc}); "
                             "see the workers' logs (memory limit?)"}
        if isinstance(exc, ImportError) or "deserializ" in str(exc):
            raise UserError(f"the Dask cluster cannot run trials ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                            f"{SETUP_HINT}") from None
        raise RuntimeError(f"Dask could not run trial {spec['trial_id']} ({future.status}): "
                           f"{type(exc).__name__}: {exc}; finished trials are stored, run again to resume") from (
            exc if isinstance(exc, BaseException) else None)


def _exception(result):
    """The exception of a future that did not finish, from `as_completed(with_results=True)`'s result."""
    return result[1] if isinstance(result, tuple) and len(result) == 3 else result


def _killed_worker(distributed, result) -> bool:
    return isinstance(_exception(result), distributed.KilledWorker)


def _connect(distributed, address: str):
    try:
        return distributed.Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except Exception as exc:  # OSError when unreachable, ValueError for a malformed address, ...
        raise UserError(f"search.scheduler: cannot reach the Dask scheduler at {address!r} within "
                        f"{CONNECT_TIMEOUT} s ({type(exc).__name__}: {exc}); start one with `dask scheduler` "
                        "(and workers with `dask worker <address>`), or set scheduler = \"\" for a local "
                        "cluster") from None
