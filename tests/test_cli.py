"""The command line as a user meets it: subprocesses, exit codes, one-line errors, kill and resume."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import QUICK

ROOT = Path(__file__).resolve().parents[1]


def main_py(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def _sets(overrides) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


def test_help_is_quick_and_imports_nothing_heavy():
    code = ("import sys, time; t = time.perf_counter(); sys.argv = ['main.py', '--help']\n"
            "import runpy\ntry:\n    runpy.run_path('main.py', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('matplotlib', 'pandas', 'joblib', 'sklearn', 'numpy') if m in sys.modules]\n"
            "print('HEAVY', heavy, time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True).stdout
    assert "examples:" in out and "run" in out and "report" in out
    heavy_line = out.strip().splitlines()[-1]
    assert heavy_line.startswith("HEAVY []"), heavy_line
    assert float(heavy_line.split()[-1]) < 0.5


def test_version_and_subcommand_help():
    assert main_py("--version").stdout.startswith("main.py ")
    run_help = main_py("run", "--help").stdout
    assert "--set" in run_help and "example" in run_help


def test_run_writes_the_folder_and_prints_a_leaderboard(tmp_path):
    result = main_py("run", "--out", str(tmp_path / "exp"), *_sets(QUICK))
    assert result.returncode == 0, result.stderr
    assert "val_accuracy (mean ± std)" in result.stdout and "test_accuracy" in result.stdout
    assert len(pd.read_csv(tmp_path / "exp" / "runs.csv")) == 8
    assert result.stderr == ""  # no progress bar when stderr is not a terminal


@pytest.fixture(scope="module")
def finished_folder(tmp_path_factory):
    """A finished quick experiment, made once; tests copy it before touching it."""
    folder = tmp_path_factory.mktemp("cli") / "exp"
    assert main_py("run", "--out", str(folder), *_sets(QUICK)).returncode == 0
    return folder


@pytest.mark.parametrize("args, message", [
    (["--set", "train.lr=0"], "train.lr must be a number > 0, got 0"),
    (["--set", "train.batch_size=0"], "train.batch_size must be an integer >= 1"),
    (["--set", "search.space.lr=[]"], "search.space.lr must be a non-empty list"),
    (["--set", "data.test_size=0.7", "--set", "data.val_size=0.5"], "test_size + data.val_size"),
    (["--n-jobs", "0"], "search.n_jobs must be a non-zero integer"),
    (["--set", "train.colour=1"], "unknown key 'train.colour'"),
    (["--config", "no-such-file.toml"], "cannot read"),
    (["--set", "data.dataset=no-such.csv", "--force"], "neither a built-in"),  # --force moves nothing yet
    (["--n-jobs", "two"], "invalid int value"),
    (["--bogus"], "unrecognized arguments"),
])
def test_bad_input_exits_2_with_one_line_and_leaves_the_folder_alone(finished_folder, tmp_path, args, message):
    folder = tmp_path / "exp"
    shutil.copytree(finished_folder, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    result = main_py("run", "--out", str(folder), *_sets(QUICK), *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before


def test_changed_config_is_refused_without_force(tmp_path):
    folder = tmp_path / "exp"
    assert main_py("run", "--out", str(folder), *_sets(QUICK)).returncode == 0
    result = main_py("run", "--out", str(folder), *_sets(QUICK), "--set", "train.epochs=3")
    assert result.returncode == 2 and "train.epochs: 8 -> 3" in result.stderr and "--force" in result.stderr
    assert main_py("run", "--out", str(folder), *_sets(QUICK), "--set", "train.epochs=3", "--force").returncode == 0


def test_sigkill_mid_experiment_then_resume_loses_and_repeats_nothing(tmp_path):
    # Slow enough trials (digits, 27 configs x 2 repeats, 30 epochs) that the kill lands mid-run.
    overrides = ["--set", "search.n_jobs=2", "--set", "train.epochs=40"]
    folder = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "main.py", "run", "--out", str(folder), *overrides], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    runs_path = folder / "runs.csv"
    deadline = time.time() + 60
    while time.time() < deadline:
        if runs_path.exists() and len(runs_path.read_text().splitlines()) > 6:
            break
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # the parent and its workers, mid-write or not
    process.wait()
    stored = runs_path.read_text()
    complete = [line for line in stored.splitlines()[1:] if stored.endswith("\n") or line != stored.splitlines()[-1]]
    assert 5 <= len(complete) < 54, "the kill should land mid-experiment"
    assert not (folder / "best.json").exists()

    resumed = main_py("run", "--out", str(folder), *overrides)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{54 - len(complete)} trials run, {len(complete)} resumed" in resumed.stdout
    runs = pd.read_csv(runs_path)
    assert len(runs) == 54 and runs["trial_id"].is_unique
    final_lines = set(runs_path.read_text().splitlines())
    assert set(complete) <= final_lines  # rows stored before the kill are unchanged, timing included
    history = pd.read_csv(folder / "history.csv")
    assert len(history) == 54 * 40 and not history.duplicated(["trial_id", "epoch"]).any()

    fresh = main_py("run", "--out", str(tmp_path / "fresh"), *overrides)
    assert fresh.returncode == 0
    a = pd.read_csv(tmp_path / "fresh" / "runs.csv").drop(columns="fit_seconds")
    pd.testing.assert_frame_equal(runs.drop(columns="fit_seconds"), a, check_exact=True)
