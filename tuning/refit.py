"""After the search: choose a configuration, retrain it on every non-test row, test it once, write what it made.

choose -> refit -> test_once -> write: model.npz (the network with the preprocessing it needs),
test_predictions.csv (the final model on every test row) and best.json (the choice, its
validation score, the test scores and the facts of the run).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from framework import History, Model, TrainingDiverged

from .advice import advice
from .datasets import fingerprint
from .errors import RunFailed
from .files import atomic_open, naming, write_text
from .network import FollowLearningRates, build_model, parameter_count, uses_schedule
from .objective import in_target_units
from .preprocess import Preprocessor, TargetScale, is_table
from .seeds import FINAL_REFIT, derive_seed
from .select import select_best, selectable, why_nothing_is_selectable
from .splits import rows
from .store import BEST_FILE, HISTORY_FILE, MODEL_FILE, PREDICTIONS_FILE
from .trial import TrialSpec, TrialStatus
from .trial_data import fit_rows, rows_range, scaled_rows
from .versions import package_versions


@dataclass
class Choice:
    """The selected configuration: its leaderboard row, its first trial's spec, the settings to retrain with."""

    row: pd.Series
    spec: TrialSpec
    train: dict
    lrs: list[float] | None = None  # with a schedule: its best trial's lr at each epoch, which the refit follows


@dataclass
class FinalModel:
    """The network retrained on every non-test row, with the preprocessing fitted on those rows."""

    model: Model
    preprocessor: Preprocessor
    target_scale: TargetScale | None
    history: History
    rows: int
    feature_range: tuple[float, float] | None  # an array's raw values (an image's pixel range), for predict
    seconds: float


def choose(prep, runs: pd.DataFrame, board: pd.DataFrame) -> Choice:
    """The configuration selection picks (`search.select`), and the epochs its refit trains."""
    if selectable(board).empty:
        raise RunFailed(why_nothing_is_selectable(runs))
    first_spec: dict[int, TrialSpec] = {}
    for spec in prep.specs:
        first_spec.setdefault(spec.config_id, spec)
    row = select_best(board, prep.objective, prep.experiment.search["select"],
                      complexity=lambda r: parameter_count(first_spec[r["config_id"]].train, prep.n_features,
                                                           prep.n_outputs))
    spec = first_spec[int(row["config_id"])]
    train = dict(spec.train)
    column = prep.objective.column
    trials = runs[(runs["config_id"] == row["config_id"]) & (runs["status"] == TrialStatus.OK)]
    best_trial = trials.sort_values(column, ascending=not prep.objective.higher_is_better, kind="mergesort").iloc[0]
    if train["early_stopping"]:
        # Early stopping chose an epoch count on validation data; the refit (no validation) uses it.
        train["epochs"] = int(best_trial["final_epoch"])
    lrs = _learning_rates(prep, str(best_trial["trial_id"]), train["epochs"]) if uses_schedule(train) else None
    return Choice(row, spec, train, lrs)


def _learning_rates(prep, trial_id: str, epochs: int) -> list[float]:
    """The lr of each of a trial's first `epochs` epochs, from history.csv."""
    history = pd.read_csv(prep.folder / HISTORY_FILE, usecols=["trial_id", "epoch", "lr"], dtype={"trial_id": str})
    lrs = history[history["trial_id"] == trial_id].sort_values("epoch", kind="mergesort")["lr"].tolist()
    if len(lrs) < epochs:
        raise RunFailed(f"history.csv holds {len(lrs)} epochs of trial {trial_id}, the chosen configuration's best, "
                        f"and its refit needs the lr of {epochs}: restore the file or run with force=True")
    return lrs[:epochs]


def refit(prep, choice: Choice) -> FinalModel:
    """Retrain the chosen settings from scratch on every non-test row (preprocessing refitted on those rows)."""
    splits, task, settings = prep.splits, prep.task, prep.experiment.data
    index = splits.refit_rows()
    y = splits.y_rest[index]
    if is_table(splits.X_rest):
        X = rows(splits.X_rest, index)
        preprocessor = Preprocessor.fit(X, settings["scale"], splits.dataset.roles, settings["missing"])
        X, feature_range = preprocessor.transform(X, "training rows"), None
    else:  # scaled from the raw rows a slice at a time: no raw copy of every non-test row beside the scaled one
        preprocessor = fit_rows(splits.X_rest, index, settings["scale"])
        X, feature_range = scaled_rows(preprocessor, splits.X_rest, index), rows_range(splits.X_rest, index)
    target_scale = TargetScale.fit(y) if task == "regression" else None
    model = build_model(choice.train, prep.n_features, prep.n_outputs, task, derive_seed(prep.experiment.seed,
                                                                                          FINAL_REFIT))
    start = time.perf_counter()
    try:
        history = model.fit(X, target_scale.apply(y) if target_scale else y,
                            epochs=choice.train["epochs"], batch_size=choice.train["batch_size"],
                            callbacks=[FollowLearningRates(choice.lrs)] if choice.lrs else None)
    except TrainingDiverged as exc:
        raise RunFailed(f"the final refit of the chosen configuration ({choice.spec.params}) on every non-test row "
                        f"diverged ({exc}); every trial is stored: lower the lr or its range and run again") from None
    return FinalModel(model, preprocessor, target_scale, history, len(X), feature_range, time.perf_counter() - start)


def test_once(prep, final: FinalModel) -> tuple[dict, pd.DataFrame, tuple[np.ndarray, np.ndarray]]:
    """The final model's test scores and its prediction for every test row: the only read of the test split."""
    X_test, y_test = prep.splits.test()
    target_scale = final.target_scale
    X_scaled = (final.preprocessor.transform(X_test, "test rows") if is_table(X_test) else
                scaled_rows(final.preprocessor, X_test))  # a slice at a time: no full-size float64 slice
    scores = final.model.evaluate(X_scaled, target_scale.apply(y_test) if target_scale else y_test)
    if target_scale:  # errors in the target's own units
        scores = in_target_units(scores, target_scale.std)
    scores = {f"test_{k}": float(v) for k, v in scores.items()}
    output = final.model.predict(X_scaled)
    if target_scale:
        predicted = target_scale.invert(output[:, 0])
        table = pd.DataFrame({"source_row": prep.splits.test_rows, "true": y_test, "predicted": predicted})
    else:
        classes = np.asarray(prep.splits.dataset.classes)
        table = pd.DataFrame({"source_row": prep.splits.test_rows, "true": classes[y_test],
                              "predicted": classes[output.argmax(axis=1)],
                              "probability": output.max(axis=1)})
    return scores, table, (X_test, y_test)


def _metadata(prep, choice: Choice, final: FinalModel) -> dict:
    """What `predict` needs besides the network: task, classes, image shape, and the preprocessing."""
    dataset = prep.splits.dataset
    return {
        "task": prep.task,
        "dataset": dataset.name,
        "label": dataset.label,
        "classes": dataset.classes,
        "image_shape": list(dataset.image_shape) if dataset.image_shape else None,
        "feature_range": list(final.feature_range) if final.feature_range else None,
        "preprocessor": final.preprocessor.to_dict(),
        "target_scale": vars(final.target_scale) if final.target_scale else None,
        "params": choice.spec.params,
        "predict_with": "tuning.load_predictor",  # framework.load_model's predict warns raw rows need it
    }


def _best_record(prep, runs, choice: Choice, final: FinalModel, scores: dict, test, run_info: dict) -> dict:
    """best.json: the choice and its validation score, the test scores, and the facts of the run."""
    splits, row, column = prep.splits, choice.row, prep.objective.column
    X_test, y_test = test
    return {
        "params": choice.spec.params, "config_id": int(row["config_id"]), "select": prep.experiment.search["select"],
        column: float(row["mean"]), f"{column}_std": float(row["std"]), "n_repeats": int(row["n_ok"]),
        "val_loss": float(row["val_loss"]), "epochs": choice.train["epochs"], "refit_rows": final.rows,
        **scores, "test_rows": len(y_test), "test_fingerprint": fingerprint(X_test, np.asarray(y_test)),
        "train": choice.train, "model": MODEL_FILE,
        "final_history": {"epoch": list(range(1, len(final.history.epoch) + 1)), **final.history.history},
        "run": {
            "dataset": splits.dataset.name, "task": prep.task, "n_features": prep.n_features,
            "classes": len(splits.dataset.classes),
            "rows": {"train": len(splits.y_train), "val": len(splits.y_val), "test": len(y_test)},
            "folds": len(splits.folds) if splits.cross_validated else 0,
            "trials": len(prep.specs), "trials_stored": len(runs), **run_info, "refit_seconds": final.seconds,
            "versions": package_versions(),
        },
    }


def finalize(prep, runs: pd.DataFrame, board: pd.DataFrame, run_info: dict) -> dict:
    """Choose, refit, test once, and write model.npz, test_predictions.csv and best.json; returns best.json.

    `run_info` (search_seconds, workers) goes into best.json's `run` section with the data sizes.
    """
    choice = choose(prep, runs, board)
    for data in prep.data:  # the search's scaled rows: the refit scales its own
        data.release()
    final = refit(prep, choice)
    scores, table, test = test_once(prep, final)
    final.model.metadata = _metadata(prep, choice, final)
    notes = advice(prep.experiment.space, choice.spec.params, board, prep.objective.metric, len(prep.data[0].y_val))
    with naming(prep.folder / MODEL_FILE):
        final.model.save(prep.folder / MODEL_FILE)
    best = {**_best_record(prep, runs, choice, final, scores, test, run_info), "advice": notes}
    with atomic_open(prep.folder / PREDICTIONS_FILE) as f:
        table.to_csv(f, index_label="row")
    write_text(prep.folder / BEST_FILE, json.dumps(best, indent=2) + "\n")
    return best
