"""One trial: build the network for a parameter set, train it, return a plain record.

`run_trial` is the one function workers execute (as scikit-learn's `_fit_and_score`): a
top-level, picklable function of plain data that never raises for a bad candidate; a
diverging or failing trial comes back as a record with its status and error.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np

from framework import EarlyStopping, Model, TrainingDiverged
from framework.callbacks import Callback

from .network import PLATEAU_MONITOR, ContinuedSchedule, build_model, build_schedule
from .objective import Objective, in_target_units, mode_of
from .trial_data import TrialData


class TrialStatus(StrEnum):
    """How a trial ended; the text is runs.csv's `status` cell."""

    OK = "ok"
    DIVERGED = "diverged"
    FAILED = "failed"


@dataclass(frozen=True)
class TrainingState:
    """Weights and optimizer state after a segment of training, so a later segment continues from it."""

    weights: list[np.ndarray]
    optimizer: dict[str, list[np.ndarray]]
    iterations: int
    val_losses: tuple[float, ...] = ()  # every epoch's so far: a plateau schedule carries on from them

    @classmethod
    def of(cls, model: Model, val_losses: tuple[float, ...] = ()) -> TrainingState:
        optimizer = {name: [a.copy() for a in arrays] for name, arrays in model.optimizer.state().items()}
        return cls(model.get_weights(), optimizer, model.optimizer.iterations, tuple(val_losses))

    def restore(self, model: Model) -> None:
        model.set_weights(self.weights)
        model.optimizer.load_state(self.optimizer, self.iterations)


@dataclass(frozen=True)
class TrialSpec:
    """What to train: a configuration (`params` applied to the full `train` settings), a repeat and its seed.

    Successive halving trains a trial in segments: `rung`, epochs `start_epoch` to `end_epoch`, a
    `fit_seed` for the segment's shuffling, the `state` to continue from, and `keep_state` to return it.
    """

    trial_id: str
    config_id: int
    repeat: int
    seed: int
    params: dict
    train: dict
    fold: int = 0  # which training/validation rows: 0 for the holdout split, 0..k-1 under k-fold cross-validation
    metric: str = "accuracy"  # the validation metric whose best epoch the record reports (the Objective's)
    rung: int | None = None
    start_epoch: int = 0
    end_epoch: int | None = None
    fit_seed: int | None = None
    state: TrainingState | None = None
    keep_state: bool = False

    @property
    def last_epoch(self) -> int:
        return self.train["epochs"] if self.end_epoch is None else self.end_epoch

    def segment(self, rung: int, start: int, end: int, fit_seed: int, state: TrainingState | None,
                keep_state: bool) -> TrialSpec:
        """This trial's training from epoch `start` to `end`, as rung `rung` of successive halving."""
        return replace(self, rung=rung, start_epoch=start, end_epoch=end, fit_seed=fit_seed, state=state,
                       keep_state=keep_state)


@dataclass
class TrialRecord:
    """What a trial produced: its status, final and best metrics, every epoch's logs, its time."""

    trial_id: str
    status: TrialStatus = TrialStatus.OK
    error: str = ""
    epochs: int = 0  # epochs trained (under halving: since the trial's start)
    final_epoch: int = 0  # the epoch whose weights the trial ended with (early stopping restores one)
    metrics: dict[str, float] = field(default_factory=dict)  # final loss, accuracy, val_*, best_epoch, best_val_*
    fit_seconds: float = 0.0
    history: list[dict] = field(default_factory=list)  # one dict per epoch: epoch, logs, seconds
    state: TrainingState | None = None
    rung: int | None = None  # successive halving: the rung this segment of the trial trained

    @classmethod
    def failed(cls, trial_id: str, error: str) -> TrialRecord:
        """A trial that produced nothing (a worker died, say): every backend reports it this way."""
        return cls(trial_id, TrialStatus.FAILED, error)

    @property
    def ok(self) -> bool:
        return self.status == TrialStatus.OK

    def outcome(self) -> dict:
        """The runs.csv cells the record fills."""
        return {"status": self.status, "error": self.error, "epochs": self.epochs, "final_epoch": self.final_epoch,
                **self.metrics, "fit_seconds": self.fit_seconds}


class EpochRecorder(Callback):
    """Keeps every epoch's logs with the seconds it took (the rows of history.csv).

    Epochs are numbered from `first_epoch` + 1, so a continued trial's rows follow its earlier ones.
    """

    def __init__(self, first_epoch: int = 0, target_std: float | None = None) -> None:
        self.rows: list[dict] = []
        self.first_epoch, self.target_std = first_epoch, target_std

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if self.target_std is not None:  # a regression: errors in the target's own units
            logs = in_target_units(logs, self.target_std)
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


def _train(spec: TrialSpec, data: TrialData, recorder: EpochRecorder) -> tuple[Model, EarlyStopping | None]:
    """Build the network, continue from `spec.state` if any, and fit the spec's epochs."""
    train = spec.train
    model = build_model(train, data.n_features, data.n_outputs, data.task, spec.seed)
    untrained = model.evaluate(data.X_train, data.y_train)["loss"]
    schedule = build_schedule(train)
    if spec.state is not None:
        spec.state.restore(model)
        if schedule:
            past = [{PLATEAU_MONITOR: v} for v in spec.state.val_losses]
            schedule = [ContinuedSchedule(schedule, model, past)]
    callbacks: list[Callback] = [*schedule, recorder, DivergenceGuard(untrained)]
    stopper = None
    if train["early_stopping"]:
        stopper = EarlyStopping("val_loss", patience=train["early_stopping"], mode=mode_of("val_loss"),
                                restore_best_weights=True)
        callbacks.append(stopper)
    model.fit(data.X_train, data.y_train, epochs=spec.last_epoch - spec.start_epoch, batch_size=train["batch_size"],
              validation_data=(data.X_val, data.y_val), callbacks=callbacks, seed=spec.fit_seed)
    return model, stopper


def _summarise(record: TrialRecord, rows: list[dict], stopper: EarlyStopping | None, objective: Objective) -> None:
    """Fill the record's final and best metrics from its epoch rows."""
    # EarlyStopping restored its best epoch's weights: that epoch is what the trial produced.
    restored = stopper is not None and stopper.best_epoch is not None
    final = rows[stopper.best_epoch] if restored else rows[-1]
    best = objective.best_epoch(rows)
    record.final_epoch = final["epoch"]
    # the epoch's lr is history.csv's; in runs.csv "lr" is the searched setting
    record.metrics = {k: v for k, v in final.items() if k not in ("epoch", "seconds", "lr")}
    record.metrics["best_epoch"] = best["epoch"]
    record.metrics.update({f"best_{k}": v for k, v in best.items() if k.startswith("val_")})
    if not all(math.isfinite(v) for k, v in final.items() if k != "epoch"):
        record.status, record.error = TrialStatus.DIVERGED, "validation loss is not finite"


def run_trial(spec: TrialSpec, data: TrialData, blas_threads: int | None = None) -> TrialRecord:
    """Train one configuration and return its record; never raises for a bad candidate."""
    from threadpoolctl import threadpool_limits

    record = TrialRecord(spec.trial_id, rung=spec.rung)
    recorder = EpochRecorder(spec.start_epoch, data.target_std if data.task == "regression" else None)
    start = time.perf_counter()
    model = stopper = None
    try:
        with threadpool_limits(limits=blas_threads, user_api="blas"):
            model, stopper = _train(spec, data, recorder)
    except TrainingDiverged as exc:
        record.status, record.error = TrialStatus.DIVERGED, str(exc)
    except Exception as exc:  # one bad candidate must not end the search (scikit-learn's error_score)
        record.status, record.error = TrialStatus.FAILED, f"{type(exc).__name__}: {exc}"
    record.fit_seconds = time.perf_counter() - start
    record.history = recorder.rows
    record.epochs = spec.start_epoch + len(recorder.rows)
    if record.ok and recorder.rows:
        _summarise(record, recorder.rows, stopper, Objective(spec.metric, data.task))
    if spec.keep_state and record.ok:
        past = spec.state.val_losses if spec.state is not None else ()
        record.state = TrainingState.of(model, (*past, *(row["val_loss"] for row in recorder.rows)))
    return record
