"""Keras-style callbacks: hooks `fit` calls at the start and end of training and of every epoch."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

import numpy as np

from .metrics import METRICS


def monitor_mode(owner: str, monitor: str, mode: str) -> str:
    """'min' or 'max' for a monitored log: `mode` itself, or for "auto" the metric's own direction
    (val_f1: max), else as Keras: "acc" in the name is max, anything else min."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    if not isinstance(monitor, str):
        raise ValueError(f"{owner}: monitor must be the name of a logged value, got {monitor!r}")
    metric = METRICS.get(monitor.removeprefix("val_"))
    return ("max" if metric.higher_is_better else "min") if metric else "max" if "acc" in monitor else "min"


class Callback:
    """Base callback; `fit` sets `self.model` before `on_train_begin`."""

    model = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        pass

    def on_train_end(self, logs: dict | None = None) -> None:
        pass

    def on_nonfinite_loss(self, epoch: int, batch: int) -> bool:
        """Called when a batch loss is NaN or inf; return True to stop quietly instead of raising."""
        return False


class History(Callback):
    """Records every epoch's logs: `history["val_accuracy"]` is a list with one value per epoch."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.stopped_epoch: int | None = None
        self.diverged_epoch: int | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.history, self.epoch = {}, []
        self.stopped_epoch = self.diverged_epoch = None

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


class LambdaCallback(Callback):
    """A callback from plain functions, e.g. `LambdaCallback(on_epoch_end=lambda epoch, logs: ...)`."""

    def __init__(self, on_epoch_end: Callable[[int, dict], None] | None = None,
                 on_train_end: Callable[[dict | None], None] | None = None) -> None:
        self._on_epoch_end, self._on_train_end = on_epoch_end, on_train_end

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if self._on_epoch_end:
            self._on_epoch_end(epoch, logs)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._on_train_end:
            self._on_train_end(logs)


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by `min_delta` for `patience` epochs, as Keras 3's.

    With `restore_best_weights`, the model ends with the weights of its best epoch;
    `best_epoch` (0-based) and `best` tell which epoch and value that was. As in Keras, the
    first value is always the best so far (even a NaN, which no later value then beats),
    so training never stops at its first epoch.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = False) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be an integer >= 0, got {patience!r}")
        mode = monitor_mode("EarlyStopping", monitor, mode)
        self.monitor, self.patience, self.min_delta = monitor, patience, abs(float(min_delta))
        self.mode, self.restore_best_weights = mode, restore_best_weights

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.wait = 0
        self._best_weights: list[np.ndarray] | None = None

    def _is_improvement(self, value: float) -> bool:
        if self.best is None:
            return True
        # Keras' comparison, (value -/+ min_delta) against best, rounding included.
        if self.mode == "max":
            return value - self.min_delta > self.best
        return value + self.min_delta < self.best

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if self.monitor not in logs:
            raise ValueError(f"EarlyStopping: monitor {self.monitor!r} is not logged; available: {', '.join(logs)}")
        value = logs[self.monitor]
        self.wait += 1
        if self._is_improvement(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self._best_weights = self.model.get_weights()
        elif self.wait >= self.patience and epoch > 0:  # as Keras: `patience` epochs without improvement
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.restore_best_weights and self._best_weights is not None:
            self.model.set_weights(self._best_weights)


class TerminateOnNaN(Callback):
    """Stop training quietly (weights and optimizer state restored to the last finite epoch) on a NaN/inf loss.

    Without it, `fit` raises `TrainingDiverged`.
    """

    def on_nonfinite_loss(self, epoch: int, batch: int) -> bool:
        return True


class EpochLogger(Callback):
    """Writes one line per epoch (`fit(verbose=1)`): epoch number, then every logged value."""

    def __init__(self, epochs: int, stream: TextIO) -> None:
        self.epochs, self.stream = epochs, stream

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        values = "  ".join(f"{key} {value:.4g}" if key == "lr" else f"{key} {value:.4f}" for key, value in logs.items())
        self.stream.write(f"Epoch {epoch + 1:>{len(str(self.epochs))}}/{self.epochs}  {values}\n")
        self.stream.flush()
