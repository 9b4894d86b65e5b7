"""The Python API: run an experiment, read a folder back, load a final model. The CLI is one client of it."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

from .config import Experiment
from .errors import ConfigError, DataNote
from .predict import Predictor
from .results import Results, read_results


def run(experiment: Experiment | dict, out: str | Path | None = None, n_jobs: int | None = None,
        force: bool = False, progress: bool = False, on_status: Callable[[str], None] | None = None,
        plots: bool = True) -> Results:
    """Run (or resume) `experiment` into the folder `out` (default results/<name>) and read it back.

    `experiment` is an `Experiment` or a dict shaped as the experiment file (`Experiment.from_dict`).
    `n_jobs` overrides search.n_jobs; `force=True` replaces a different experiment found in `out` (its
    files are moved aside); `progress=True` shows a bar (a widget in Jupyter) with the best configuration's
    mean score so far; `plots=False` skips plots/ and report.md (`tuning.load_results(folder)` and its
    `plot_*` methods, or `python main.py report`, draw them later). Raises ConfigError or UserError on bad
    input, RunFailed when nothing could be selected. The results' `summary` says how much ran, resumed and took.
    """
    from .prepare import prepare
    from .progress import Progress
    from .runner import run_experiment

    if isinstance(experiment, dict):
        experiment = Experiment.from_dict(experiment)
    elif not isinstance(experiment, Experiment):
        raise ConfigError(f"run: expected an Experiment or a dict, got {type(experiment).__name__}")
    prep = prepare(experiment, out, force)
    for note in prep.notes:
        warnings.warn(note, DataNote, stacklevel=2)
    bar = Progress(prep, progress)
    try:
        summary = run_experiment(experiment, n_jobs=n_jobs, on_trial=bar.on_trial, prepared=prep,
                                 on_status=on_status, render_report=plots)
    finally:
        bar.close()
    results = summary.results or read_results(summary.folder)  # the report's reading: its importance computed once
    summary.results = None  # no cycle: the results hold the summary
    results.summary = summary
    return results


def load_results(folder: str | Path) -> Results:
    """An experiment folder read back, finished or interrupted: the same object `run` returns."""
    return read_results(folder)


def load_predictor(path: str | Path) -> Predictor:
    """The final model of a run (its folder or its model.npz) with the preprocessing it was trained with:
    `.predict(rows)` takes a DataFrame (by column name), an array, or the path of an image or of a .csv / .npy
    of rows."""
    return Predictor.load(path)
