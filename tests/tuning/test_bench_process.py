"""The process benchmark's pieces: GridSearchCV's job is the runner's job, and --timings output parses."""

from __future__ import annotations

import numpy as np

from benchmarks.bench_process import JOB_TOML, median_shares, phases
from benchmarks.gridsearch_job import GRID, runner_split
from tuning.config import load_experiment
from tuning.datasets import load_dataset
from tuning.splits import split


def test_gridsearch_job_cuts_the_runners_split_and_searches_its_grid(tmp_path):
    config = tmp_path / "job.toml"
    config.write_text(JOB_TOML)
    experiment = load_experiment(config)
    assert experiment.search["space"] == GRID and experiment.search["repeats"] == 1
    assert experiment.search["n_jobs"] == 2 and experiment.search["strategy"] == "grid"
    dataset = load_dataset("digits")
    ours = split(dataset, experiment.data["test_size"], experiment.data["val_size"], experiment.seed)
    theirs = runner_split(dataset.X, dataset.y, experiment.seed)
    expected = (ours.X_train, ours.y_train, ours.X_val, ours.y_val, *ours.test())
    assert all(np.array_equal(a, b) for a, b in zip(theirs, expected, strict=True))


def test_timing_lines_parse_into_phase_shares():
    stderr = ("note: something\ntiming: start-up       0.500 s ( 25.0%)\ntiming: search         1.500 s ( 75.0%)\n"
              "timing: total          2.000 s (100.0%)\n")
    assert phases(stderr) == {"start-up": 0.5, "search": 1.5, "total": 2.0}
    shares = median_shares([(4.0, {**phases(stderr), "exit": 2.0})])
    assert shares == {"start-up": 0.125, "search": 0.375, "exit": 0.5}
