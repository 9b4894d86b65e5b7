"""Faults of the machine: a full disk, a read-only folder, Ctrl-C at any point, a closed stdout.

Each ends in one line naming what failed, and leaves every file that was complete complete.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from tests.helpers import (
    QUICK,
    ROOT,
    assert_one_line_error,
    assert_same_csvs,
    failing_writes,
    file_bytes,
    main,
    run_quick,
    sets,
)
from tuning import prepare as prepare_module


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults") / "exp"
    assert main("run", "--out", folder, *sets(QUICK)).returncode == 0  # with its plots and report.md
    return folder


@pytest.mark.parametrize("error, message", [(errno.ENOSPC, "No space left on device"),
                                            (errno.EACCES, "Permission denied")])
@pytest.mark.parametrize("after", [0, 3])
def test_a_report_that_cannot_be_written_keeps_every_old_file(finished, tmp_path, monkeypatch, error, message,
                                                              after):
    folder = tmp_path / "exp"
    shutil.copytree(finished, folder)
    before = file_bytes(folder)
    failed = failing_writes(monkeypatch, folder, error, after=after)
    result = main("report", folder)
    assert_one_line_error(result, message)
    assert f"{folder}/plots/" in result.stderr or "report.md" in result.stderr  # names the file
    assert failed and file_bytes(folder) == before  # no PNG or report.md half written, no .tmp left


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EACCES])
def test_a_search_whose_writes_fail_keeps_the_stored_trials_and_resumes(finished, tmp_path, monkeypatch, error):
    folder = tmp_path / "exp"
    shutil.copytree(finished, folder)
    runs = (folder / "runs.csv").read_text().splitlines(keepends=True)
    (folder / "runs.csv").write_text("".join(runs[:4]))  # 3 trials stored, 5 to run
    for name in ("best.json", "model.npz"):
        (folder / name).unlink()
    before = file_bytes(folder)
    failing_writes(monkeypatch, folder, error)
    result = main("run", "--out", folder, *sets(QUICK))
    assert_one_line_error(result, f"{folder}/")
    assert file_bytes(folder) == before
    monkeypatch.undo()  # the disk has room again
    assert main("run", "--out", folder, *sets(QUICK), "--no-plots").returncode == 0
    assert_same_csvs(folder, finished)


def test_ctrl_c_while_loading_the_data_ends_quietly(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare_module, "load_dataset", interrupted)
    result = main("run", "--out", tmp_path / "exp", *sets(QUICK))
    assert_one_line_error(result, "interrupted: finished trials are stored in", code=130)
    assert not (tmp_path / "exp").exists()


def test_ctrl_c_while_generating_candidates_ends_quietly(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare_module, "trial_specs", interrupted)
    assert_one_line_error(main("run", "--out", tmp_path / "exp", *sets(QUICK)), "interrupted", code=130)


def test_report_into_a_closed_pipe_ends_quietly(finished):
    # `report DIR | head`: the reader has gone by the time the leaderboard is printed (after the plots).
    command = f"{sys.executable} main.py report {finished} | head -0"
    result = subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.stderr == "", result.stderr
    assert result.returncode == 1  # as Python's own advice for a closed stdout: exit 1, quietly


def test_the_stored_rows_survive_a_failure_mid_append(finished, tmp_path, monkeypatch):
    # The 4th trial's rows meet a full disk: the 3 before it stay, whole, and a resume completes.
    folder = tmp_path / "exp"
    # .lock, config.toml, data.json, empty runs.csv and history.csv, then 3 trials x (history, runs) appends
    failing_writes(monkeypatch, folder, errno.ENOSPC, after=5 + 3 * 2)
    with pytest.raises(OSError, match="No space left on device"):
        run_quick(folder, QUICK)
    assert len(pd.read_csv(folder / "runs.csv")) == 3
    monkeypatch.undo()
    run_quick(folder, QUICK)
    assert_same_csvs(folder, finished)


def test_a_killed_runs_scratch_data_is_cleared_by_the_next_run(finished, tmp_path):
    folder = tmp_path / "exp"
    shutil.copytree(finished, folder)
    (folder / ".scratch-k1ll3d" / "0").mkdir(parents=True)  # what a SIGKILLed run leaves: memory-mapped arrays
    (folder / ".scratch-k1ll3d" / "0" / "X_train.npy").write_bytes(b"\x93NUMPY")
    run_quick(folder, QUICK)
    assert not list(folder.glob(".scratch-*"))
