"""Where trials run: in this process, or in local worker processes through joblib.

Results come back in the order trials finish, so the parent can store each at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .trial import TrialData, run_trial

# One BLAS thread per trial whatever n_jobs is: multi-threaded BLAS sums in another order, and
# results must not depend on n_jobs. Parallelism comes from running trials side by side.
TRIAL_BLAS_THREADS = 1


def worker_count(n_jobs: int, n_tasks: int) -> int:
    """Workers that will run `n_tasks` trials: n_jobs resolved by joblib (-1 = all cores), at most n_tasks."""
    import joblib

    return max(1, min(joblib.effective_n_jobs(n_jobs), n_tasks))


def dispatch(specs: list[dict], data: TrialData, n_jobs: int, scratch: Path) -> Iterator[dict]:
    """Run trials with joblib, yielding records in the order they finish."""
    import joblib

    workers = worker_count(n_jobs, len(specs))
    if workers == 1:
        yield from (run_trial(spec, data, TRIAL_BLAS_THREADS) for spec in specs)
        return
    shared = data.share(scratch)  # workers map the arrays instead of receiving copies per trial
    # batch_size=1: a trial is a coarse task; each result is stored the moment it finishes.
    parallel = joblib.Parallel(n_jobs=workers, return_as="generator_unordered", backend="loky", batch_size=1)
    yield from parallel(joblib.delayed(run_trial)(spec, shared, TRIAL_BLAS_THREADS) for spec in specs)
