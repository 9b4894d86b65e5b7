"""Before a run writes anything: check the experiment folder is this experiment's, load and split the data,
scale it, and list every trial; then, holding the folder's lock, claim the folder for the run.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .columns import likely_leaks
from .config import Experiment, load_experiment
from .datasets import Dataset, fingerprint, load_dataset, load_frame
from .errors import ConfigError, UserError, shown
from .files import write_text
from .objective import Objective, tracked_metrics
from .preprocess import is_table
from .space import trial_specs
from .splits import Splits, split
from .store import CONFIG_FILE, DATA_FILE, OUTPUTS, SCRATCH_PREFIX, Columns, move_aside
from .trial import TrialSpec
from .trial_data import TrialData


@dataclass
class Prepared:
    """Everything a run needs that is computed before any file is written."""

    experiment: Experiment
    folder: Path
    splits: Splits  # the raw rows (its dataset keeps none: see split_rows)
    data: list[TrialData]  # the rows of each fold (one for the holdout split), preprocessed on its training rows;
    # the refit releases their features (TrialData.release), which come back if asked for
    specs: list[TrialSpec]
    params: list[str]  # the searched keys, sorted
    objective: Objective
    data_record: dict  # data.json: the data's source and fingerprint
    force: bool  # replace a different experiment found in the folder (its files are moved aside)
    fingerprints: list[str]  # of each fold's rows: part of every trial's identity (TPE makes specs later)

    @property
    def notes(self) -> list[str]:
        """What loading the data noticed, one line each (columns dropped, rows left out, likely leaks)."""
        return self.data_record["notes"]

    @property
    def task(self) -> str:
        return self.splits.dataset.task

    def columns(self, halving: bool = False) -> Columns:
        """The CSV schemas of this experiment (successive halving's journal adds a rung column)."""
        return Columns(self.params, self.task, tracked_metrics(self.task, self.n_outputs), halving,
                       self.splits.cross_validated)

    @property
    def n_features(self) -> int:
        return self.data[0].n_features

    @property
    def n_outputs(self) -> int:
        return self.data[0].n_outputs


def experiment_folder(experiment: Experiment, out: str | Path | None) -> Path:
    """Where the experiment writes: `out`, or results/<name>."""
    return Path(out) if out else Path("results") / experiment.name


def data_record(experiment: Experiment, dataset: Dataset, notes: list[str] = ()) -> dict:
    """What data.json says of the loaded data: its source, size, a fingerprint of every row, and the notes
    of loading it (columns dropped, rows left out, likely leaks), which report.md repeats."""
    rows = len(dataset.y) + (len(dataset.test[1]) if dataset.test is not None else 0)
    return {"dataset": experiment.data["dataset"], "rows": rows, "features": int(dataset.X.shape[1]),
            "fingerprint": fingerprint(dataset.X, dataset.y, *(dataset.test or ())), "notes": list(notes)}


def check_folder(folder: Path, experiment: Experiment, record: dict | None, force: bool) -> bool:
    """Whether `folder` holds a different experiment, or this one on other data than `record` (None: not
    compared), to be replaced; refused without `force`. Also refuses a file, or another run's files."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file, not a folder; choose another out= folder")
    if not (folder / CONFIG_FILE).exists():
        found = [name for name in OUTPUTS if (folder / name).exists()]
        if found and not force:
            raise UserError(f"{folder} holds {', '.join(found)} but no {CONFIG_FILE}: they are another run's files; "
                            "choose another out= folder, or use force=True to move them aside")
        return bool(found)
    changed = _config_changes(folder, experiment) or (_data_changes(folder, record) if record else [])
    if changed and not force:
        raise UserError(f"{folder} holds {'; '.join(changed[:3])}; use force=True to replace it (old results are "
                        "moved aside) or choose another out= folder")
    return bool(changed)


def _config_changes(folder: Path, experiment: Experiment) -> list[str]:
    try:
        stored = load_experiment(folder / CONFIG_FILE).comparable()
    except UserError as exc:
        return [f"an unreadable {CONFIG_FILE} ({exc})"]
    changes = differences(stored, experiment.comparable())
    return [f"an experiment with a different config ({'; '.join(changes[:3])})"] if changes else []


def _data_changes(folder: Path, record: dict) -> list[str]:
    """A resume must see the data the stored trials saw (folders from before data.json have none to compare)."""
    path = folder / DATA_FILE
    if not path.exists():
        return []
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        before = stored["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"an unreadable {DATA_FILE} ({type(exc).__name__})"]
    if before == record["fingerprint"]:
        return []
    return [f"results of other data: {record['dataset']!r} changed since the first run into this folder "
            f"(data fingerprint {str(before)[:20]} then, {record['fingerprint']} now); restore it"]


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ, as 'key: old -> new'."""
    changes = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict) and key != "space":
            changes += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            changes.append(f"{prefix}{key}: {shown(a)} -> {shown(b)}")
    return changes


def prepare(experiment: Experiment, out: str | Path | None = None, force: bool = False) -> Prepared:
    """Check the folder and load the data, writing nothing; raises UserError on bad input."""
    folder = experiment_folder(experiment, out)
    check_folder(folder, experiment, None, force)  # a refused config is said before the data is loaded
    d = experiment.data
    dataset = (load_dataset(d["dataset"], d["target"], d["task"], d["categorical"], d["drop"], d["missing"])
               if experiment.frame is None else
               load_frame(experiment.frame, experiment.name, "the DataFrame", d["target"], d["task"],
                          categorical=d["categorical"], drop=d["drop"], missing=d["missing"]))
    record = data_record(experiment, dataset)
    check_folder(folder, experiment, record, force)
    _check_task_settings(experiment, dataset.task)
    splits = split_rows(dataset, d["test_size"], d["val_size"], experiment.seed, d["folds"])
    dataset = splits.dataset  # without its features: the splits hold the rows
    leaks = likely_leaks(splits.X_rest, splits.y_rest, dataset.task == "classification") if dataset.roles else []
    record["notes"] = [*dataset.notes, *leaks]
    objective = Objective.for_task(dataset.task, experiment.search["metric"], len(dataset.classes))
    data = [TrialData.for_fold(splits, k, d["scale"], d["missing"]) for k in range(len(splits.folds))]
    record["validation_rows"] = len(data[0].y_val)  # one row's step in accuracy: the plots mark ties by it
    fingerprints = [fingerprint(f.X_train, f.y_train, f.X_val, f.y_val) for f in data]
    specs = trial_specs(experiment, fingerprints, objective.metric)
    return Prepared(experiment, folder, splits, data, specs, sorted(experiment.space), objective, record, force,
                    fingerprints)


def split_rows(dataset: Dataset, test_size: float, val_size: float, seed: int, folds: int = 0) -> Splits:
    """`split(dataset, ...)`, holding the features once: the returned splits' dataset has none (its X has no rows),
    and a writable C-ordered array's rows are moved within its own buffer (so `dataset.X` is reordered: pass
    a dataset nothing else reads), so that the non-test and test rows are views of it rather than copies
    beside it. The splits are `split`'s, the same bit for bit.
    """
    X = dataset.X
    if is_table(X) or X.ndim != 2 or not X.flags.writeable or not X.flags.c_contiguous:
        splits = split(dataset, test_size, val_size, seed, folds)
    else:  # split row positions, then put the rows in that order: non-test rows first, then the test rows
        cut = split(replace(dataset, X=np.arange(len(X)).reshape(-1, 1)), test_size, val_size, seed, folds)
        rest = cut.X_rest[:, 0]
        if dataset.test is None:
            _permute_rows(X, np.concatenate([rest, cut._X_test[:, 0]]))
            X_test = X[len(rest):]
        else:  # the source's own test split: every row of X is a non-test row, in order
            X_test = cut._X_test
        splits = replace(cut, X_rest=X[:len(rest)], _X_test=X_test)
    no_rows = X.iloc[:0].copy() if is_table(X) else np.empty((0, *X.shape[1:]), dtype=X.dtype)
    splits.dataset = replace(dataset, X=no_rows)
    return splits


def _permute_rows(X: np.ndarray, order: np.ndarray) -> None:
    """`X[:] = X[order]` in place, one row at a time along the permutation's cycles (one row of extra memory)."""
    done = np.zeros(len(order), dtype=bool)
    done[order == np.arange(len(order))] = True
    row = np.empty_like(X[0])
    for start in np.flatnonzero(~done):
        if done[start]:
            continue
        row[...] = X[start]
        i = start
        while True:
            done[i] = True
            j = order[i]
            if j == start:
                X[i] = row
                break
            X[i] = X[j]
            i = j


def _check_task_settings(experiment: Experiment, task: str) -> None:
    """Refuse settings the task ignores, rather than run trials that differ in nothing."""
    searched = experiment.space.get("label_smoothing", [])
    values = [experiment.train["label_smoothing"], *(searched if isinstance(searched, list) else [searched])]
    if task == "regression" and any(v != 0 for v in values):  # a {low, high} range counts as non-zero
        raise ConfigError("train.label_smoothing: applies to classification only, and this is a regression "
                          "task; remove it (or set it to 0)")


def claim_folder(prep: Prepared) -> Path | None:
    """With the folder's lock held: check it again (another run may have written it since `prepare`),
    move a replaced experiment aside, clear a killed run's scratch data, write config.toml and data.json.

    Returns the folder the replaced experiment's files were moved to, if any.
    """
    folder = prep.folder
    replaced = move_aside(folder) if check_folder(folder, prep.experiment, prep.data_record, prep.force) else None
    for scratch in folder.glob(f"{SCRATCH_PREFIX}*"):
        shutil.rmtree(scratch, ignore_errors=True)
    if not (folder / CONFIG_FILE).exists():
        write_text(folder / CONFIG_FILE, prep.experiment.to_toml())
    if not (folder / DATA_FILE).exists():
        write_text(folder / DATA_FILE, json.dumps(prep.data_record, indent=2) + "\n")
    return replaced
