"""Run an experiment: data -> trial specs -> parallel trials -> store -> selection -> refit -> test once.

Trials go to joblib (local processes) and stream back as they finish; the parent appends each
to the store at once. Running the same experiment again resumes: stored trials are skipped.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from framework import TrainingDiverged

from .config import Experiment, load_experiment
from .datasets import Affine, Splits, TargetScale, fingerprint, load_dataset, split
from .errors import UserError
from .parallel import DaskCluster, dispatch, worker_count
from .report import render
from .select import leaderboard, parameter_count, select_best
from .space import trial_specs
from .store import (
    BEST_FILE,
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    MODEL_FILE,
    PREDICTIONS_FILE,
    RUNGS_FILE,
    RUNS_FILE,
    ExperimentStore,
    FolderLock,
    move_aside,
    write_table,
)
from .trial import TrialData, build_model, score_key

HISTORY_COLUMNS = ["trial_id", "epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"]
METRIC_COLUMNS = ["loss", "accuracy", "val_loss", "val_accuracy", "best_epoch", "best_val_loss", "best_val_accuracy"]


def _without_accuracy(columns: list[str], task: str) -> list[str]:
    return columns if task == "classification" else [c for c in columns if "accuracy" not in c]


def runs_columns(params: list[str], task: str, halving: bool = False) -> list[str]:
    """runs.csv's columns: identity, searched params, (rung reached), outcome, metrics, time."""
    return ["trial_id", "config_id", "repeat", "seed", *params, *(["rung"] if halving else []), "status", "error",
            "epochs", "final_epoch", *_without_accuracy(METRIC_COLUMNS, task), "fit_seconds"]


def history_columns(task: str, halving: bool = False) -> list[str]:
    """history.csv's columns; successive halving adds the rung each epoch belongs to."""
    columns = _without_accuracy(HISTORY_COLUMNS, task)
    return [columns[0], "rung", *columns[1:]] if halving else columns


@dataclass
class Prepared:
    """Everything a run needs that is computed before any file is written."""

    experiment: Experiment
    folder: Path
    splits: Splits
    data: TrialData
    specs: list[dict]
    params: list[str]
    replace: bool  # --force over a different stored config: move the old outputs aside first


@dataclass
class RunResult:
    """What a finished run returns to the CLI."""

    folder: Path
    leaderboard: pd.DataFrame
    best: dict
    n_trials: int
    n_run: int  # trainings run now (under halving: trial-rungs)
    n_resumed: int  # trainings found stored in the folder
    rungs: int  # successive-halving rungs (0 for grid and random search)
    wall_seconds: float
    fit_seconds: float
    n_workers: int
    splits: Splits


def prepare(experiment: Experiment, out: str | Path | None = None, force: bool = False) -> Prepared:
    """Check the folder and load the data, writing nothing; raises UserError on bad input."""
    folder = Path(out) if out else Path("results") / experiment.name
    stored_config = folder / CONFIG_FILE
    replace = False
    if stored_config.exists():
        try:
            changed = _differences(load_experiment(stored_config).comparable(), experiment.comparable())
        except UserError as exc:
            changed = [f"unreadable {CONFIG_FILE}: {exc}"]
        replace = bool(changed)
        if changed and not force:
            raise UserError(f"{folder} holds an experiment with a different config ({'; '.join(changed[:3])}); "
                            "use --force to replace it (old results are moved aside) or choose another --out")
    d = experiment.data
    dataset = load_dataset(d["dataset"], d["target"], d["task"])
    splits = split(dataset, d["test_size"], d["val_size"], experiment.seed)
    data, _, _ = TrialData.from_splits(splits, d["scale"])
    specs = trial_specs(experiment, fingerprint(data.X_train, data.y_train, data.X_val, data.y_val))
    params = sorted(experiment.space)
    return Prepared(experiment, folder, splits, data, specs, params, replace)


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ, as 'key: old -> new'."""
    changes = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict) and key != "space":
            changes += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            changes.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return changes


def _run_row(spec: dict, record: dict) -> dict:
    return {**{k: spec[k] for k in ("trial_id", "config_id", "repeat", "seed")}, **spec["params"], **record}


def run_experiment(experiment: Experiment, out: str | Path | None = None, n_jobs: int | None = None,
                   force: bool = False, on_trial: Callable[[dict, int, int], None] | None = None,
                   prepared: Prepared | None = None, render_report: bool = True) -> RunResult:
    """Run (or resume) the experiment into its folder and return the selection and test score.

    `on_trial(record, done, total)` is called in the parent after each trial is stored.
    `render_report=False` skips the plots and report.md (about 2 s), e.g. for benchmarks of the search.
    """
    start = time.perf_counter()
    prep = prepared or prepare(experiment, out, force)
    folder = prep.folder
    n_jobs = experiment.search["n_jobs"] if n_jobs is None else n_jobs
    search = _search_halving if experiment.search["strategy"] == "halving" else _search_all
    with contextlib.ExitStack() as stack:
        cluster = None
        if experiment.search["backend"] == "dask":  # one cluster for the whole run (every rung), reached
            # before anything is written, so an unreachable scheduler leaves the folder as it was
            cluster = stack.enter_context(DaskCluster(experiment.search["scheduler"],
                                                      worker_count(n_jobs, len(prep.specs))))
        stack.enter_context(FolderLock(folder))
        if prep.replace:
            move_aside(folder)
        if not (folder / CONFIG_FILE).exists():
            (folder / CONFIG_FILE).write_text(experiment.to_toml(), encoding="utf-8")
        with tempfile.TemporaryDirectory(prefix="tuning-data-") as scratch:
            run = functools.partial(dispatch, n_jobs=n_jobs, scratch=Path(scratch), cluster=cluster)
            n_run, n_resumed, rungs, fit_seconds = search(prep, run, on_trial)
            workers = cluster.workers if cluster is not None else worker_count(n_jobs, n_run) if n_run else 0
        runs = pd.read_csv(folder / RUNS_FILE)
        board = leaderboard(runs, prep.params, prep.data.task)
        best = finalize(prep, runs, board, {"search_seconds": time.perf_counter() - start, "workers": workers})
        if render_report:
            render(folder)
    return RunResult(folder, board, best, len(prep.specs), n_run, n_resumed, rungs, time.perf_counter() - start,
                     fit_seconds, workers, prep.splits)


def _search_all(prep: Prepared, run: Callable, on_trial) -> tuple[int, int, int, float]:
    """Grid or random search: every trial trains its full epochs; `run(specs, data)` dispatches them.

    Returns (trainings run, trainings resumed, rungs, fit seconds), as `_search_halving`.
    """
    specs, task = prep.specs, prep.data.task
    store = ExperimentStore(prep.folder, runs_columns(prep.params, task), history_columns(task))
    stored = store.open()
    pending = [spec for spec in specs if spec["trial_id"] not in stored]
    by_id = {spec["trial_id"]: spec for spec in specs}
    done, fit_seconds = len(specs) - len(pending), 0.0
    for record in run(pending, prep.data):
        spec = by_id[record["trial_id"]]
        history = [{"trial_id": spec["trial_id"], **row} for row in record.pop("history")]
        store.append(_run_row(spec, record), history)
        fit_seconds += record["fit_seconds"]
        done += 1
        if on_trial:
            on_trial(record, done, len(specs))
    store.sort([spec["trial_id"] for spec in specs])
    return len(pending), len(specs) - len(pending), 0, fit_seconds


def rung_schedule(min_epochs: int, eta: int, epochs: int) -> list[int]:
    """The epoch count each rung trains up to: min_epochs, min_epochs * eta, ..., then `epochs`."""
    ends, end = [], min_epochs
    while end < epochs:
        ends.append(end)
        end *= eta
    return [*ends, epochs]


def rung_sizes(n_configs: int, eta: int, rungs: int) -> list[int]:
    """Configurations per rung: all, then the best ceil(1/eta) of the rung before (at least one)."""
    sizes = [n_configs]
    for _ in range(rungs - 1):
        sizes.append(max(1, math.ceil(sizes[-1] / eta)))
    return sizes


def _checkpoint(folder: Path, trial_id: str, rung: int) -> Path:
    return folder / CHECKPOINTS_DIR / f"{trial_id}-rung{rung}.npz"


def _save_state(path: Path, state: dict) -> None:
    """A trial's weights and optimizer state after a rung, so the next rung continues from it."""
    arrays = {f"w{i}": w for i, w in enumerate(state["weights"])}
    for name, values in state["optimizer"].items():
        arrays.update({f"opt_{name}_{i}": a for i, a in enumerate(values)})
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, iterations=state["iterations"], **arrays)
    tmp.replace(path)


def _load_state(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    weights = [arrays[f"w{i}"] for i in range(sum(k.startswith("w") for k in arrays))]
    optimizer: dict[str, list] = {}
    for key in sorted((k for k in arrays if k.startswith("opt_")), key=lambda k: int(k.rsplit("_", 1)[1])):
        optimizer.setdefault(key[4:].rsplit("_", 1)[0], []).append(arrays[key])
    return {"weights": weights, "optimizer": optimizer, "iterations": int(arrays["iterations"])}


def _search_halving(prep: Prepared, run: Callable, on_trial) -> tuple[int, int, int, float]:
    """Successive halving: all configurations train `min_epochs`, the best 1/eta continue (from their
    saved weights and optimizer state) to eta times the epochs, and so on up to `epochs`.

    rungs.csv is the journal (one row per trial and rung) that resume reads; runs.csv holds each
    trial's latest rung and is rewritten after every rung.
    """
    experiment, specs, task, folder = prep.experiment, prep.specs, prep.data.task, prep.folder
    search = experiment.search
    schedule = rung_schedule(search["min_epochs"], search["eta"], experiment.train["epochs"])
    configs = sorted({spec["config_id"] for spec in specs})
    sizes = rung_sizes(len(configs), search["eta"], len(schedule))
    repeats = search["repeats"]
    columns = runs_columns(prep.params, task, halving=True)
    store = ExperimentStore(folder, columns, history_columns(task, halving=True), journal=RUNGS_FILE,
                            key=("trial_id", "rung"))
    stored = store.open()
    total = sum(sizes) * repeats
    done = n_run = 0
    fit_seconds = 0.0
    alive = configs
    for rung, end in enumerate(schedule):
        begin = schedule[rung - 1] if rung else 0
        last = rung == len(schedule) - 1
        journal = pd.read_csv(store.runs_path, dtype={"trial_id": str})
        healthy_before = set(journal.loc[(journal["rung"] == rung - 1) & (journal["status"] == "ok"), "trial_id"])
        segments = []
        for spec in specs:
            if spec["config_id"] not in alive or (rung and spec["trial_id"] not in healthy_before):
                continue
            if f"{spec['trial_id']}/{rung}" in stored:
                done += 1
                continue
            segments.append({**spec, "rung": rung, "start_epoch": begin, "end_epoch": end, "keep_state": not last,
                             "fit_seed": int(np.random.SeedSequence([spec["seed"], rung]).generate_state(1)[0]),
                             "state": _load_state(_checkpoint(folder, spec["trial_id"], rung - 1)) if rung else None})
        by_id = {segment["trial_id"]: segment for segment in segments}
        for record in run(segments, prep.data):
            segment = by_id[record["trial_id"]]
            state = record.pop("state", None)
            if state is not None:  # saved before the journal row: a stored rung always has its checkpoint
                _save_state(_checkpoint(folder, segment["trial_id"], rung), state)
            history = [{"trial_id": segment["trial_id"], "rung": rung, **row} for row in record.pop("history")]
            store.append({**_run_row(segment, record), "rung": rung}, history)
            fit_seconds += record["fit_seconds"]
            done, n_run = done + 1, n_run + 1
            if on_trial:
                on_trial(record, done, total)
        journal = pd.read_csv(store.runs_path, dtype={"trial_id": str})
        this_rung = journal[journal["rung"] == rung]
        if not last and len(this_rung):
            board = leaderboard(this_rung, prep.params, task)
            alive = board["config_id"].head(sizes[rung + 1]).tolist()
    order = [f"{spec['trial_id']}/{rung}" for rung in range(len(schedule)) for spec in specs]
    store.sort(order)
    # runs.csv: each trial's latest rung, its text copied from the journal as it is.
    journal = pd.read_csv(store.runs_path, dtype=str, keep_default_na=False)
    latest = {row["trial_id"]: row for row in sorted(journal.to_dict("records"), key=lambda row: int(row["rung"]))}
    write_table(folder / RUNS_FILE, columns, [latest[s["trial_id"]] for s in specs if s["trial_id"] in latest])
    shutil.rmtree(folder / CHECKPOINTS_DIR, ignore_errors=True)  # the final model is refit from scratch
    return n_run, done - n_run, len(schedule), fit_seconds


def _versions() -> dict:
    import platform

    import joblib
    import sklearn

    return {"python": platform.python_version(), "numpy": np.__version__, "scikit-learn": sklearn.__version__,
            "pandas": pd.__version__, "joblib": joblib.__version__}


def finalize(prep: Prepared, runs: pd.DataFrame, board: pd.DataFrame, run_info: dict) -> dict:
    """Refit the selected configuration on train+val, test it once, write model.npz and best.json.

    `run_info` (search_seconds, workers) goes into best.json's `run` section with the data sizes.
    """
    experiment, splits, task = prep.experiment, prep.splits, prep.data.task
    first_spec = {}
    for spec in prep.specs:
        first_spec.setdefault(spec["config_id"], spec)
    n_features, n_outputs = prep.data.n_features, prep.data.n_outputs
    rule = experiment.search["select"]
    chosen = select_best(board, task, rule,
                         complexity=lambda row: parameter_count(first_spec[row["config_id"]]["train"],
                                                                n_features, n_outputs))
    spec = first_spec[int(chosen["config_id"])]
    train = dict(spec["train"])
    if train["early_stopping"]:
        # Early stopping chose an epoch count on validation data; the refit (no validation) uses it.
        trials = runs[(runs["config_id"] == chosen["config_id"]) & (runs["status"] == "ok")]
        key = score_key(task)
        best_trial = trials.sort_values(key, ascending=key != "val_accuracy", kind="mergesort").iloc[0]
        train["epochs"] = int(best_trial["final_epoch"])

    X = np.concatenate([splits.X_train, splits.X_val])
    y = np.concatenate([splits.y_train, splits.y_val])
    affine = Affine.fit(experiment.data["scale"], X)
    target_scale = TargetScale.fit(y) if task == "regression" else None
    y_fit = target_scale.apply(y) if target_scale else y
    seed = int(np.random.SeedSequence([experiment.seed, 2**31]).generate_state(1)[0])
    model = build_model(train, n_features, n_outputs, task, seed)
    refit_start = time.perf_counter()
    try:
        history = model.fit(affine.apply(X), y_fit, epochs=train["epochs"], batch_size=train["batch_size"])
    except TrainingDiverged as exc:
        raise RuntimeError(f"the final refit of the chosen configuration diverged: {exc}") from exc
    refit_seconds = time.perf_counter() - refit_start

    X_test, y_test = splits.test()  # the only read of the test split
    y_test_fit = target_scale.apply(y_test) if target_scale else y_test
    X_test_scaled = affine.apply(X_test)
    scores = model.evaluate(X_test_scaled, y_test_fit)
    output = model.predict(X_test_scaled)
    model.metadata = {
        "task": task,
        "dataset": splits.dataset.name,
        "classes": splits.dataset.classes,
        "image_shape": list(splits.dataset.image_shape) if splits.dataset.image_shape else None,
        "feature_range": [float(np.min(X)), float(np.max(X))],
        "scale": affine.to_dict(),
        "target_scale": vars(target_scale) if target_scale else None,
        "params": spec["params"],
    }
    model.save(prep.folder / MODEL_FILE)

    key = score_key(task)
    best = {
        "params": spec["params"],
        "config_id": int(chosen["config_id"]),
        "select": rule,
        key: float(chosen["mean"]),
        f"{key}_std": float(chosen["std"]),
        "n_repeats": int(chosen["n_ok"]),
        "val_loss": float(chosen["val_loss"]),
        "epochs": train["epochs"],
        "refit_rows": len(X),
        **{f"test_{k}": float(v) for k, v in scores.items()},
        "test_rows": len(y_test),
        "test_fingerprint": fingerprint(np.asarray(X_test), np.asarray(y_test)),
        "train": train,
        "model": MODEL_FILE,
        "final_history": {"epoch": list(range(1, len(history.epoch) + 1)), **history.history},
        "run": {
            "dataset": splits.dataset.name, "task": task, "n_features": n_features,
            "classes": len(splits.dataset.classes),
            "rows": {"train": len(splits.y_train), "val": len(splits.y_val), "test": len(y_test)},
            "trials": len(prep.specs), "trials_stored": len(runs), **run_info, "refit_seconds": refit_seconds,
            "versions": _versions(),
        },
    }
    if target_scale:
        predicted = target_scale.invert(output[:, 0])
        best["test_rmse"] = float(np.sqrt(np.mean((predicted - y_test) ** 2)))
        table = pd.DataFrame({"true": y_test, "predicted": predicted})
    else:
        classes = np.asarray(splits.dataset.classes)
        table = pd.DataFrame({"true": classes[y_test], "predicted": classes[output.argmax(axis=1)],
                              "probability": output.max(axis=1)})
    table.to_csv(prep.folder / PREDICTIONS_FILE, index_label="row")
    path = prep.folder / BEST_FILE
    path.with_suffix(".tmp").write_text(json.dumps(best, indent=2) + "\n", encoding="utf-8")
    path.with_suffix(".tmp").replace(path)
    return best
