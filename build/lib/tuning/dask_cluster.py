"""Trials on a Dask cluster: a running scheduler's workers (on any machines), or a LocalCluster for one run.

`scheduler="tcp://host:8786"` connects to a running scheduler: the in-memory training data is
scattered once to every worker and each task refers to it. An empty scheduler starts a
`LocalCluster` (one single-threaded worker process per worker), closed with the executor; its
workers are on this machine, so they memory-map the data files as loky workers do. The scheduler
reschedules the trial of a worker that dies (up to its `distributed.scheduler.allowed-failures`,
3 by default); a trial that kills that many workers comes back as a `failed` record.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .errors import UserError
from .executor import TRIAL_BLAS_THREADS, Executor
from .trial import TrialRecord, TrialSpec, run_trial
from .trial_data import ARRAYS, TrialData
from .versions import cluster_environment

CONNECT_TIMEOUT = 5  # seconds to reach a Dask scheduler before giving up
WORKER_TIMEOUT = 30  # seconds to wait for a reachable scheduler to have at least one worker
MAX_RESENDS = 3  # times the data is scattered anew after every worker holding it died
SETUP_HINT = ("install this repository and the same package versions on the scheduler's and every worker's "
              "machine, and start `dask scheduler` and `dask worker` with the repository on PYTHONPATH")


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
        for name in ARRAYS:
            setattr(self.data, name, np.require(getattr(self.data, name), requirements=["C", "A"]))


def run_scattered(spec: TrialSpec, scattered: ScatteredData, blas_threads: int | None = None) -> TrialRecord:
    """`run_trial` on the data a worker holds (a Dask task)."""
    return run_trial(spec, scattered.data, blas_threads)


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise UserError(f"search.backend = \"dask\" needs dask.distributed ({exc}); install it with "
                        "pip install 'dask[distributed]', or use backend = \"loky\"") from None
    return distributed


class DaskCluster(Executor):
    """A Dask client, and the LocalCluster it started when `scheduler` is empty.

    Trials are submitted with `client.submit` (one task per trial, a unique key, so never
    deduplicated or cached) and collected with `distributed.as_completed`, which yields each
    future once: a trial rescheduled after its worker died still resolves once.
    """

    def __init__(self, scheduler: str = "", n_workers: int = 1, scratch_parent: Path | None = None) -> None:
        super().__init__(scratch_parent)
        self.scheduler, self.n_workers = scheduler.strip(), n_workers
        self.client = self.local_cluster = None
        self._sent: dict[int, tuple[TrialData, object]] = {}  # id(data) -> (data, what tasks receive)

    def open(self) -> DaskCluster:
        """Connect to the scheduler (checking its workers) or start the local cluster."""
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

    def __enter__(self) -> DaskCluster:
        return self if self.client is not None else self.open()

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
            super().close()

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
            found = {"scheduler": self.client.run_on_scheduler(cluster_environment),
                     **self.client.run(cluster_environment)}
        except Exception as exc:
            raise UserError(f"the Dask cluster at {self.scheduler} cannot import this repository "
                            f"({type(exc).__name__}: {exc}); {SETUP_HINT}") from None
        here = cluster_environment()
        for where, there in found.items():
            if there != here:
                raise UserError(f"Dask {where} runs Python {there['python']} / NumPy {there['numpy']}, this machine "
                                f"Python {here['python']} / NumPy {here['numpy']}: results would not match a local "
                                f"run; {SETUP_HINT}")

    def _data_for_workers(self, data: TrialData):
        """What tasks receive as their data, made once per data object: on a local cluster, a
        memory-mapped copy (tasks carry its file paths); else a future of the in-memory arrays,
        scattered to every worker, and scattered anew if every worker holding it died."""
        cached = self._sent.get(id(data))
        if cached is not None and (self.local_cluster is not None or cached[1].status == "finished"):
            return cached[1]
        if self.local_cluster is not None:
            sent = self.shared(data)
        else:  # files in a local folder do not exist on other machines: send the arrays themselves
            sent = self.client.scatter(ScatteredData(data.in_memory()), broadcast=True, hash=False)
        self._sent[id(data)] = (data, sent)  # holding `data` keeps its id from being reused
        return sent

    def run(self, specs: list[TrialSpec], data: list[TrialData]) -> Iterator[TrialRecord]:
        """Submit every trial and yield the records as they finish; unfinished trials are cancelled
        if the caller stops early (an exception, Ctrl-C, or closing the generator)."""
        distributed = _import_distributed()
        if self.client is None:
            raise RuntimeError("DaskCluster.run needs an open cluster: use `with DaskCluster(...) as cluster`")
        if not specs:
            return
        pending: dict[str, tuple] = {}  # task key -> (future, spec, the data it was given)

        def submit(spec: TrialSpec):
            task_data = self._data_for_workers(data[spec.fold])
            key = f"trial-{spec.trial_id}-{uuid.uuid4().hex[:8]}"  # unique: never deduplicated or cached
            function = run_scattered if isinstance(task_data, distributed.Future) else run_trial
            future = self.client.submit(function, spec, task_data, TRIAL_BLAS_THREADS, key=key, pure=False)
            pending[future.key] = (future, spec, task_data)
            return future

        try:
            done = distributed.as_completed([submit(spec) for spec in specs], loop=self.client.loop,
                                            with_results=True, raise_errors=False)
            yield from self._collect(distributed, done, pending, submit)
        finally:
            if pending and self.client is not None and self.client.status == "running":
                self.client.cancel([f for f, _, _ in pending.values()])

    def _collect(self, distributed, done, pending: dict, submit) -> Iterator[TrialRecord]:
        """Yield each finished trial's record once; resubmit trials whose scattered data was lost."""
        seen: set[str] = set()
        resends = 0
        for future, result in done:
            _, spec, task_data = pending.pop(future.key)
            lost_data = isinstance(task_data, distributed.Future) and task_data.status != "finished"
            if future.status != "finished" and lost_data and not _killed_worker(distributed, result):
                # Every worker holding the scattered data died, so the scheduler dropped the trials
                # that needed it: scatter it again (once, for the first such trial) and resubmit them.
                if any(sent is task_data for _, sent in self._sent.values()):
                    resends += 1
                    if resends > MAX_RESENDS:
                        raise RuntimeError(f"the Dask workers holding the data died {resends} times; finished "
                                           "trials are stored, run again to resume")
                done.add(submit(spec))
                future.release()
                continue
            record = self._record(distributed, future, result, spec)
            future.release()
            if record.trial_id in seen:  # cannot happen with one future per trial; never store twice
                continue
            seen.add(record.trial_id)
            yield record

    def _record(self, distributed, future, result, spec: TrialSpec) -> TrialRecord:
        if future.status == "finished":
            return result
        exc = _exception(result)
        if isinstance(exc, distributed.KilledWorker):
            # The scheduler ran the trial on `allowed-failures` + 1 workers and each died (out of memory?):
            # the trial, not the cluster, is the likely cause, so it is a failed trial and the search goes on.
            return TrialRecord.failed(spec.trial_id, f"KilledWorker: every Dask worker that ran this trial died "
                                                     f"({exc}); see the workers' logs (memory limit?)")
        if isinstance(exc, ImportError) or "deserializ" in str(exc):
            raise UserError(f"the Dask cluster cannot run trials ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                            f"{SETUP_HINT}") from None
        raise RuntimeError(f"Dask could not run trial {spec.trial_id} ({future.status}): "
                           f"{type(exc).__name__}: {exc}; finished trials are stored, run again to resume") from (
            exc if isinstance(exc, BaseException) else None)


def _exception(result):
    """The exception of a future that did not finish, from `as_completed(with_results=True)`'s result."""
    return result[1] if isinstance(result, tuple) and len(result) == 3 else result


def _killed_worker(distributed, result) -> bool:
    return isinstance(_exception(result), distributed.KilledWorker)


def _check_address(address: str) -> None:
    """Refuse an address Dask cannot parse before a Client is made of it: a half-made Client's finaliser
    would wait 10 s at exit and print a traceback ("Exception ignored in ...")."""
    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port
    from distributed.comm.registry import backends

    try:
        scheme, location = parse_address(address)
        if scheme not in backends:
            raise ValueError(f"unknown protocol {scheme!r}, expected one of {', '.join(sorted(backends))}")
        if scheme in ("tcp", "tls", "ws", "wss"):
            _, port = parse_host_port(location)
            if not 0 < port < 65536:
                raise ValueError(f"port {port} is out of range")
    except ValueError as exc:
        raise UserError(f"search.scheduler: {address!r} is not a Dask scheduler address ({exc}); expected "
                        "e.g. 'tcp://host:8786', or \"\" for a local cluster") from None


def _connect(distributed, address: str):
    _check_address(address)
    try:
        return distributed.Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except Exception as exc:  # OSError when unreachable, ValueError for a malformed address, ...
        raise UserError(f"search.scheduler: cannot reach the Dask scheduler at {address!r} within "
                        f"{CONNECT_TIMEOUT} s ({type(exc).__name__}: {exc}); start one with `dask scheduler` "
                        "(and workers with `dask worker <address>`), or set scheduler = \"\" for a local "
                        "cluster") from None
