"""The store: append and flush, resume, repair after a kill, and the folder lock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tuning.errors import UserError
from tuning.store import ExperimentStore, FolderLock

RUNS = ["trial_id", "lr", "status", "epochs", "val_accuracy"]
HISTORY = ["trial_id", "epoch", "loss"]


def _store(folder) -> ExperimentStore:
    store = ExperimentStore(folder, RUNS, HISTORY)
    store.open()
    return store


def _append(store: ExperimentStore, trial: str, epochs: int = 0, **cells) -> None:
    store.append({"trial_id": trial, "status": "ok", "epochs": epochs, **cells},
                 [{"trial_id": trial, "epoch": e, "loss": 0.5} for e in range(epochs, 0, -1)])


def test_rows_are_on_disk_after_each_append(tmp_path):
    store = _store(tmp_path)
    store.append({"trial_id": "a", "lr": 0.1, "status": "ok", "epochs": 2, "val_accuracy": 0.123456789012345678},
                 [{"trial_id": "a", "epoch": 1, "loss": 2.5}, {"trial_id": "a", "epoch": 2, "loss": float("nan")}])
    runs, history = pd.read_csv(tmp_path / "runs.csv"), pd.read_csv(tmp_path / "history.csv")
    assert list(runs.columns) == RUNS and runs.loc[0, "val_accuracy"] == 0.123456789012345678  # full precision
    assert list(history["epoch"]) == [1, 2] and history["loss"].isna().tolist() == [False, True]
    with pytest.raises(RuntimeError, match="already stored"):
        store.append({"trial_id": "a"}, [])


def test_reopen_knows_stored_trials(tmp_path):
    store = _store(tmp_path)
    _append(store, "a")
    _append(store, "b", 2)
    assert ExperimentStore(tmp_path, RUNS, HISTORY).open() == {"a", "b"}


def test_torn_last_line_and_orphan_epochs_are_repaired(tmp_path):
    store = _store(tmp_path)
    _append(store, "a", 1)
    # A kill between the epochs of trial b and its runs row, in the middle of a line.
    with open(tmp_path / "history.csv", "a") as f:
        f.write("b,1,0.5\nb,2,0.")
    with open(tmp_path / "runs.csv", "a") as f:
        f.write("b,0.1,o")
    assert ExperimentStore(tmp_path, RUNS, HISTORY).open() == {"a"}
    assert (tmp_path / "runs.csv").read_text().splitlines()[-1].startswith("a,")
    assert pd.read_csv(tmp_path / "history.csv")["trial_id"].tolist() == ["a"]


def test_foreign_csv_is_refused(tmp_path):
    (tmp_path / "runs.csv").write_text("x,y\n1,2\n")
    with pytest.raises(UserError, match="belongs to another experiment"):
        _store(tmp_path)
    assert (tmp_path / "runs.csv").read_text() == "x,y\n1,2\n"


def test_sort_puts_rows_in_canonical_order(tmp_path):
    store = _store(tmp_path)
    for trial in ("c", "a", "b"):
        _append(store, trial, 2)  # epochs 2, 1
    store.sort(["a", "b", "c"])
    assert pd.read_csv(tmp_path / "runs.csv")["trial_id"].tolist() == ["a", "b", "c"]
    history = pd.read_csv(tmp_path / "history.csv")
    assert list(zip(history["trial_id"], history["epoch"])) == [(t, e) for t in "abc" for e in (1, 2)]


def test_lock_refuses_a_second_process_and_names_the_holder(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import threading; from pathlib import Path; from tuning.store import FolderLock\n"
         f"with FolderLock(Path({str(tmp_path)!r})):\n    print('locked', flush=True); threading.Event().wait()"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(UserError, match=rf"in use by process {holder.pid} on "):
            with FolderLock(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
    with FolderLock(tmp_path):  # a killed holder's lock is released by the kernel
        pass
