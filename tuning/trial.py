"""One trial: build the network for a parameter set, train it, return a plain record.

`run_trial` is the one function workers execute (as scikit-learn's `_fit_and_score`): a
top-level, picklable function of plain data that never raises for a bad candidate; a
diverging or failing trial comes back as a record with its status and error.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from framework import EarlyStopping, Model, TrainingDiverged, mlp
from framework.callbacks import Callback
from framework.losses import MeanSquaredError, SoftmaxCrossEntropy
from framework.optimizers import SGD, Adam, Optimizer, RMSProp

from .datasets import Affine, Splits, TargetScale

_ARRAYS = ("X_train", "y_train", "X_val", "y_val")


@dataclass
class TrialData:
    """The scaled training and validation arrays every trial of an experiment trains on.

    After `share(folder)` the arrays are memory-mapped .npy files and the object pickles as
    their paths, so each worker maps the same pages instead of receiving a copy per trial.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    task: str
    n_outputs: int
    files: dict[str, str] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @classmethod
    def from_splits(cls, splits: Splits, scale: str) -> tuple[TrialData, Affine, TargetScale | None]:
        """Scale features (and regression targets) with statistics of the training rows only."""
        affine = Affine.fit(scale, splits.X_train)
        task = splits.dataset.task
        if task == "classification":
            target_scale = None
            y_train, y_val = splits.y_train, splits.y_val
            n_outputs = len(splits.dataset.classes)
        else:
            target_scale = TargetScale.fit(splits.y_train)
            y_train, y_val = target_scale.apply(splits.y_train), target_scale.apply(splits.y_val)
            n_outputs = 1
        data = cls(affine.apply(splits.X_train), y_train, affine.apply(splits.X_val), y_val, task, n_outputs)
        return data, affine, target_scale

    def share(self, folder: Path) -> TrialData:
        """Write the arrays to `folder` as .npy and return a copy backed by read-only memory maps."""
        folder.mkdir(parents=True, exist_ok=True)
        files = {}
        for name in _ARRAYS:
            path = folder / f"{name}.npy"
            np.save(path, getattr(self, name))
            files[name] = str(path)
        return TrialData(**{n: np.load(files[n], mmap_mode="r") for n in _ARRAYS}, task=self.task,
                         n_outputs=self.n_outputs, files=files)

    def __getstate__(self) -> dict:
        if not self.files:
            return self.__dict__
        return {**{k: v for k, v in self.__dict__.items() if k not in _ARRAYS}}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        for name, path in self.files.items():
            setattr(self, name, np.load(path, mmap_mode="r"))


def build_model(params: dict, n_features: int, n_outputs: int, task: str, seed: int) -> Model:
    """The compiled network a parameter set describes (the same for trials and the final refit)."""
    sizes = [n_features] + [params["hidden_units"]] * params["hidden_layers"] + [n_outputs]
    model = mlp(sizes, activation=params["activation"], dropout=params["dropout"], seed=seed)
    loss = SoftmaxCrossEntropy() if task == "classification" else MeanSquaredError()
    model.compile(loss=loss, optimizer=build_optimizer(params))
    return model


def build_optimizer(params: dict) -> Optimizer:
    """SGD (with `momentum`), Adam or RMSProp with the trial's lr and weight_decay."""
    lr, decay = params["lr"], params["weight_decay"]
    if params["optimizer"] == "sgd":
        return SGD(lr=lr, momentum=params["momentum"], weight_decay=decay)
    if params["optimizer"] == "adam":
        return Adam(lr=lr, weight_decay=decay)
    return RMSProp(lr=lr, weight_decay=decay)


class EpochRecorder(Callback):
    """Keeps every epoch's logs with the seconds it took (the rows of history.csv).

    Epochs are numbered from `first_epoch` + 1, so a continued trial's rows follow its earlier ones.
    """

    def __init__(self, first_epoch: int = 0) -> None:
        self.rows: list[dict] = []
        self.first_epoch = first_epoch

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        self.rows.append({"epoch": self.first_epoch + epoch + 1, **logs, "seconds": time.perf_counter() - self._start})


class DivergenceGuard(Callback):
    """Stops a trial whose training loss has exploded: past `factor` x the untrained network's loss.

    A NaN loss already stops `fit`; this catches runs whose loss stays finite but absurd
    (a stable log-sum-exp keeps cross-entropy finite even at lr = 1e6).
    """

    def __init__(self, untrained_loss: float, factor: float = 100.0) -> None:
        self.limit, self.factor, self.untrained_loss = factor * untrained_loss, factor, untrained_loss

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if logs["loss"] > self.limit:
            raise TrainingDiverged(f"loss {logs['loss']:.4g} at epoch {epoch + 1} is over {self.factor:g} x "
                                   f"the untrained loss {self.untrained_loss:.4g} (try a lower learning rate)",
                                   epoch, -1, logs["loss"])


def score_key(task: str) -> str:
    """The validation column selection ranks on: val_accuracy (higher is better) or val_loss (lower)."""
    return "val_accuracy" if task == "classification" else "val_loss"


def best_epoch(rows: list[dict], task: str) -> dict | None:
    """The epoch row with the best validation score (ties: lower val_loss, then earlier)."""
    if not rows:
        return None
    if task == "classification":
        return min(rows, key=lambda r: (-r["val_accuracy"], r["val_loss"], r["epoch"]))
    return min(rows, key=lambda r: (r["val_loss"], r["epoch"]))


def run_trial(spec: dict, data: TrialData, blas_threads: int | None = None) -> dict:
    """Train one configuration and return its record: spec fields, status, metrics, epoch rows.

    `spec` holds `trial_id`, `config_id`, `repeat`, `seed`, the searched `params` and the full
    `train` settings (defaults with the params applied). Successive halving adds a segment:
    `start_epoch` / `end_epoch`, the `state` to continue from (weights and optimizer state, from
    an earlier record), a `fit_seed` for the segment's shuffling, and `keep_state` to return it.
    """
    from threadpoolctl import threadpool_limits

    record = {"trial_id": spec["trial_id"], "status": "ok", "error": "", "epochs": 0, "final_epoch": 0,
              "fit_seconds": 0.0, "history": []}
    train = spec["train"]
    first_epoch, last_epoch = spec.get("start_epoch", 0), spec.get("end_epoch", train["epochs"])
    recorder = EpochRecorder(first_epoch)
    start = time.perf_counter()
    try:
        with threadpool_limits(limits=blas_threads, user_api="blas"):
            model = build_model(train, data.n_features, data.n_outputs, data.task, spec["seed"])
            untrained = model.evaluate(data.X_train, data.y_train)["loss"]
            if spec.get("state") is not None:
                model.set_weights(spec["state"]["weights"])
                model.optimizer.load_state(spec["state"]["optimizer"], spec["state"]["iterations"])
            callbacks: list[Callback] = [recorder, DivergenceGuard(untrained)]
            stopper = None
            if train["early_stopping"]:
                stopper = EarlyStopping("val_loss", patience=train["early_stopping"], restore_best_weights=True)
                callbacks.append(stopper)
            model.fit(data.X_train, data.y_train, epochs=last_epoch - first_epoch, batch_size=train["batch_size"],
                      validation_data=(data.X_val, data.y_val), callbacks=callbacks, seed=spec.get("fit_seed"))
    except TrainingDiverged as exc:
        record.update(status="diverged", error=str(exc))
    except Exception as exc:  # one bad candidate must not end the search (scikit-learn's error_score)
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    record["fit_seconds"] = time.perf_counter() - start
    rows = recorder.rows
    record["history"] = rows
    record["epochs"] = first_epoch + len(rows)
    if record["status"] == "ok" and rows:
        # EarlyStopping restored its best epoch's weights: that epoch is what the trial produced.
        restored = stopper is not None and stopper.best_epoch is not None
        final = rows[stopper.best_epoch] if restored else rows[-1]
        best = best_epoch(rows, data.task)
        record["final_epoch"] = final["epoch"]
        record.update({k: final[k] for k in final if k not in ("epoch", "seconds")})
        record["best_epoch"] = best["epoch"]
        record.update({f"best_{k}": best[k] for k in best if k.startswith("val_")})
        if not all(math.isfinite(v) for k, v in final.items() if k != "epoch"):
            record.update(status="diverged", error="validation loss is not finite")
    if spec.get("keep_state") and record["status"] == "ok":
        record["state"] = {"weights": model.get_weights(), "iterations": model.optimizer.iterations,
                           "optimizer": {k: [a.copy() for a in v] for k, v in model.optimizer.state().items()}}
    return record
