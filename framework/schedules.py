"""Learning-rate schedules: callbacks for `fit(callbacks=[...])` that set `model.optimizer.lr` epoch by epoch.

Each gives the learning-rate trajectory of its `torch.optim.lr_scheduler` namesake stepped once per
epoch (`scheduler.step()` after every epoch), from the same base lr, to the last bit: the same
recurrences on the same Python floats. The base lr is the optimizer's lr when training begins;
`fit` puts that lr back when training ends, and logs the lr each epoch trained with as `lr`.

The schedule sets epoch 0's lr when it begins (torch's initial step, in the constructor) and the
next epoch's at the end of each epoch. Chained schedules (several in one `fit`) compose in list
order, as torch's schedulers stepping one optimizer do: each recurrence reads the optimizer's lr.
"""

from __future__ import annotations

import math

from .callbacks import Callback, monitor_mode
from .checks import check_int, check_numbers


class Schedule(Callback):
    """Base: `_start(lr)` gives epoch 0's lr, `_step(t, lr)` the lr after t epochs from the current one.

    `_closed(t)` is the lr after t epochs in closed form (what torch's `_get_closed_form_lr` gives),
    which LinearWarmup uses to start the schedule that follows it.
    """

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.base_lr = float(self.model.optimizer.lr)
        self.last_epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if epoch == 0:
            self._set(self._start(self._lr()))

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        self.last_epoch += 1
        self._set(self._step(self.last_epoch, self._lr()))

    def _lr(self) -> float:
        return float(self.model.optimizer.lr)

    def _set(self, lr: float) -> None:
        self.model.optimizer.lr = lr

    def _start(self, lr: float) -> float:
        return lr

    def _step(self, t: int, lr: float) -> float:
        raise NotImplementedError

    def _closed(self, t: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class StepLR(Schedule):
    """Multiply the lr by `gamma` every `step_size` epochs: torch's StepLR."""

    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = check_int("StepLR", "step_size", step_size, 1)
        check_numbers("StepLR", gamma=(gamma, 0, False, None))
        self.gamma = float(gamma)

    def _step(self, t: int, lr: float) -> float:
        return lr * self.gamma if t % self.step_size == 0 else lr

    def _closed(self, t: int) -> float:
        return self.base_lr * self.gamma ** (t // self.step_size)

    def get_config(self) -> dict:
        return {"step_size": self.step_size, "gamma": self.gamma}


class ExponentialLR(Schedule):
    """Multiply the lr by `gamma` every epoch: torch's ExponentialLR."""

    def __init__(self, gamma: float) -> None:
        check_numbers("ExponentialLR", gamma=(gamma, 0, False, None))
        self.gamma = float(gamma)

    def _step(self, t: int, lr: float) -> float:
        return lr * self.gamma

    def _closed(self, t: int) -> float:
        return self.base_lr * self.gamma ** t

    def get_config(self) -> dict:
        return {"gamma": self.gamma}


class CosineAnnealingLR(Schedule):
    """Half a cosine from the base lr down to `eta_min` over `T_max` epochs (and back up after): torch's."""

    def __init__(self, T_max: int, eta_min: float = 0.0) -> None:  # noqa: N803 (torch's name)
        self.T_max = check_int("CosineAnnealingLR", "T_max", T_max, 1)
        check_numbers("CosineAnnealingLR", eta_min=(eta_min, 0, True, None))
        self.eta_min = float(eta_min)

    def _step(self, t: int, lr: float) -> float:
        T, eta_min = self.T_max, self.eta_min
        if (t - 1 - T) % (2 * T) == 0:  # at the bottom, where the ratio below would divide by zero
            return lr + (self.base_lr - eta_min) * (1 - math.cos(math.pi / T)) / 2
        return (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T)) * (lr - eta_min) + eta_min

    def _closed(self, t: int) -> float:
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2

    def get_config(self) -> dict:
        return {"T_max": self.T_max, "eta_min": self.eta_min}


class LinearWarmup(Schedule):
    """A linear warm-up over `warmup_epochs`, then the schedule `then` (or the base lr when None).

    `start_factor` has torch's LinearLR meaning and default (1/3): epoch 0 trains with
    base_lr * start_factor, and the lr rises linearly to reach base_lr at epoch `warmup_epochs`,
    lr(e) = base_lr * (start_factor + (1 - start_factor) * e / warmup_epochs). With `then`, this is
    torch's SequentialLR([LinearLR(start_factor, total_iters=warmup_epochs), then],
    milestones=[warmup_epochs]): `then` starts at epoch `warmup_epochs` from the base lr, counting
    its epochs from there. Without, it is LinearLR(start_factor, end_factor=1, total_iters=warmup_epochs).
    """

    def __init__(self, warmup_epochs: int, then: Schedule | None = None, start_factor: float = 1 / 3) -> None:
        self.warmup_epochs = check_int("LinearWarmup", "warmup_epochs", warmup_epochs, 1)
        check_numbers("LinearWarmup", start_factor=(start_factor, 0, False, 1, True))
        if then is not None and not isinstance(then, (StepLR, ExponentialLR, CosineAnnealingLR)):
            raise ValueError(f"LinearWarmup: then must be None, StepLR, ExponentialLR or CosineAnnealingLR, got "
                             f"{then!r} (torch's SequentialLR refuses ReduceLROnPlateau too: pass it to fit "
                             f"as a callback of its own)")
        self.then, self.start_factor = then, float(start_factor)

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        if self.then is not None:
            self.then.base_lr = self.base_lr

    def _start(self, lr: float) -> float:
        # SequentialLR first puts the base lr back, then LinearLR multiplies the lr by start_factor
        return (lr if self.then is None else self.base_lr) * self.start_factor

    def _step(self, t: int, lr: float) -> float:
        warmup = self.warmup_epochs
        if self.then is not None and t >= warmup:
            return self.then._closed(0) if t == warmup else self.then._step(t - warmup, lr)
        if t > warmup:
            return lr
        rise = 1.0 - self.start_factor  # torch's recurrence for LinearLR, end_factor 1
        return lr * (1.0 + rise / (warmup * self.start_factor + (t - 1) * rise))

    def get_config(self) -> dict:
        return {"warmup_epochs": self.warmup_epochs, "then": self.then, "start_factor": self.start_factor}


class ReduceLROnPlateau(Callback):
    """Multiply the lr by `factor` once `monitor` has not improved for more than `patience` epochs: torch's.

    torch's rule with threshold_mode "rel": an improvement beats the best by a `threshold` share;
    after a reduction, `cooldown` epochs pass before bad epochs count again; the lr never goes
    below `min_lr`, and a reduction smaller than torch's eps (1e-8) is skipped. `mode` "auto" takes
    the monitored metric's direction (`framework.metrics.METRICS`: val_loss min, val_accuracy max).
    It acts at the end of an epoch, after its validation, so the next epoch trains with the new lr.
    """

    EPS = 1e-8

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, min_lr: float = 0.0,
                 threshold: float = 1e-4, mode: str = "auto", cooldown: int = 0) -> None:
        check_numbers("ReduceLROnPlateau", factor=(factor, 0, False, 1), min_lr=(min_lr, 0, True, None),
                      threshold=(threshold, 0, True, None))
        self.patience = check_int("ReduceLROnPlateau", "patience", patience, 0)
        self.cooldown = check_int("ReduceLROnPlateau", "cooldown", cooldown, 0)
        self.monitor, self.mode = monitor, monitor_mode("ReduceLROnPlateau", monitor, mode)
        self.factor, self.min_lr, self.threshold = float(factor), float(min_lr), float(threshold)

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = self.cooldown_counter = 0

    def _is_better(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best * (1.0 - self.threshold)
        return value > self.best * (self.threshold + 1.0)

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if self.monitor not in logs:
            raise ValueError(f"ReduceLROnPlateau: monitor {self.monitor!r} is not logged; available: "
                             f"{', '.join(logs)}")
        value = float(logs[self.monitor])
        if self._is_better(value):
            self.best, self.num_bad_epochs = value, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce()
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0

    def _reduce(self) -> None:
        optimizer = self.model.optimizer
        old = float(optimizer.lr)
        new = max(old * self.factor, self.min_lr)
        if old - new > self.EPS:
            optimizer.lr = new

    def __repr__(self) -> str:
        return (f"ReduceLROnPlateau(monitor={self.monitor!r}, factor={self.factor!r}, patience={self.patience!r}, "
                f"min_lr={self.min_lr!r}, threshold={self.threshold!r}, mode={self.mode!r}, "
                f"cooldown={self.cooldown!r})")
