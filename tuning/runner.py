"""Run an experiment: prepare -> search -> select -> refit and test once -> plots and report.

Trials run on an executor (local processes through joblib's loky, or a Dask cluster) and stream
back as they finish; the parent appends each to the store at once. Running the same experiment
again resumes: stored trials are skipped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .config import Experiment
from .errors import RunFailed
from .executor import open_executor
from .halving import search_halving
from .network import layer_sizes
from .prepare import Prepared, claim_folder, prepare
from .refit import finalize
from .report import render
from .results import Results
from .search import OnTrial, search_all
from .select import leaderboard
from .splits import Splits
from .store import RUNS_FILE, FolderLock
from .tpe import search_tpe
from .trial import TrialSpec
from .trial_data import TrialData


@dataclass
class RunResult:
    """What a finished run did: its choice and scores, and how much it ran, resumed and took."""

    folder: Path
    leaderboard: pd.DataFrame
    best: dict
    n_trials: int
    n_run: int  # trainings run now (under halving: trial-rungs)
    n_resumed: int  # trainings found stored in the folder
    rungs: int  # successive-halving rungs (0 for grid and random search)
    wall_seconds: float  # everything: loading, search, refit, plots
    search_seconds: float  # up to the end of the search (loading and preparing the data included)
    fit_seconds: float
    n_workers: int
    splits: Splits
    replaced: Path | None = None  # where force=True moved a replaced experiment's files
    # time.perf_counter() when each phase ended: "prepared" (run_experiment entered, the data loaded and
    # split), "searched", "refitted" (and tested), "rendered" (plots and report.md; absent without them)
    stamps: dict[str, float] = field(default_factory=dict)
    in_process: str = ""  # why the trials ran in this process although n_jobs asked for all cores ("": they did not)
    results: Results | None = None  # the folder as the plots and report.md read it (None without them)


def run_experiment(experiment: Experiment, out: str | Path | None = None, n_jobs: int | None = None,
                   force: bool = False, on_trial: OnTrial | None = None, prepared: Prepared | None = None,
                   render_report: bool = True, on_status: Callable[[str], None] | None = None) -> RunResult:
    """Run (or resume) the experiment into its folder and return the selection and test score.

    `on_trial(record, done, total)` is called in the parent after each trial is stored, `on_status(text)`
    when the run moves on to its refit and its plots. `render_report=False` skips the plots and report.md,
    e.g. for benchmarks of the search.
    """
    status = on_status or (lambda text: None)
    start = time.perf_counter()
    prep = prepared or prepare(experiment, out, force)
    stamps = {"prepared": time.perf_counter()}
    folder = prep.folder
    search_settings = {**experiment.search, "n_jobs": experiment.search["n_jobs"] if n_jobs is None else n_jobs}
    in_process = small_enough_for_this_process(prep, search_settings)
    if in_process:
        search_settings["n_jobs"] = 1
    search = {"halving": search_halving, "tpe": search_tpe}.get(experiment.search["strategy"], search_all)
    # The executor opens before anything is written, so an unreachable scheduler leaves the folder as it was;
    # its scratch data goes inside the folder, where the next run clears it should this process be killed.
    with open_executor(search_settings, max(len(prep.specs), 2), folder) as executor, FolderLock(folder):
        replaced = claim_folder(prep)
        tally = search(prep, executor, on_trial)
        stamps["searched"] = time.perf_counter()
        search_seconds = stamps["searched"] - start
        workers = min(executor.workers, tally.run)
        runs = pd.read_csv(folder / RUNS_FILE)
        board = leaderboard(runs, prep.params, prep.objective)
        status("retraining the best configuration on every non-test row, then testing it once...")
        try:
            best = finalize(prep, runs, board, {"search_seconds": search_seconds, "workers": workers})
        except RunFailed:
            if render_report:  # report.md shows what every trial did
                render(folder)
            raise
        stamps["refitted"] = time.perf_counter()
        results = None
        if render_report:
            status("drawing the plots and report.md...")
            results, _, _ = render(folder, executor.plot_pool())
            stamps["rendered"] = time.perf_counter()
    return RunResult(folder, board, best, len(prep.specs), tally.run, tally.resumed, tally.rungs,
                     time.perf_counter() - start, search_seconds, tally.fit_seconds, workers, prep.splits, replaced,
                     stamps, in_process, results)


# What a trial's training costs, fitted on digits trials (2-core machine, one BLAS thread): a fixed part (building
# the model, metrics, the record), per optimizer step, and per row x weight of each epoch (forward and backward).
TRIAL_SECONDS, STEP_SECONDS, ROW_WEIGHT_SECONDS = 0.02, 60e-6, 1.4e-10
IN_PROCESS_BELOW_SECONDS = 1.0  # below this much training, starting workers costs more than it saves


def estimated_seconds(spec: TrialSpec, data: TrialData) -> float:
    """About how long one trial trains in one process (an estimate from its size: epochs, rows, batches, weights)."""
    train = spec.train
    widths = layer_sizes(train, data.n_features, data.n_outputs)
    weights = sum(a * b for a, b in zip(widths, widths[1:]))
    rows, epochs = len(data.y_train), spec.last_epoch - spec.start_epoch
    steps = math.ceil(rows / train["batch_size"])
    return TRIAL_SECONDS + epochs * (steps * STEP_SECONDS + (rows + len(data.y_val)) * weights * ROW_WEIGHT_SECONDS)


def small_enough_for_this_process(prep: Prepared, search: dict) -> str:
    """Why this grid or random search's trials should run in this process ("" if not): only when n_jobs asks for
    every core (-1) on local workers and the training still to do is estimated under IN_PROCESS_BELOW_SECONDS,
    which workers would not win back (they take a few tenths of a second to start). Results are the same either
    way: every trial runs with one BLAS thread and its own seed."""
    if search["n_jobs"] != -1 or search["backend"] != "loky" or search["strategy"] not in ("grid", "random"):
        return ""
    stored: set = set()
    if (prep.folder / RUNS_FILE).is_file():
        try:
            stored = set(pd.read_csv(prep.folder / RUNS_FILE, usecols=["trial_id"])["trial_id"])
        except (OSError, ValueError, pd.errors.ParserError):
            pass  # the search will say what is wrong with the file
    try:
        seconds = sum(estimated_seconds(spec, prep.data[spec.fold]) for spec in prep.specs
                      if spec.trial_id not in stored)
    except (KeyError, TypeError, IndexError):
        return ""  # settings this estimate does not know: workers, as asked
    if seconds >= IN_PROCESS_BELOW_SECONDS:
        return ""
    return f"in this process: about {seconds:.1f} s of training to do, too little for starting workers to pay off"
