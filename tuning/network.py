"""The compiled network a parameter set describes: the same for every trial and for the final refit."""

from __future__ import annotations

from framework import Model, mlp
from framework.callbacks import Callback
from framework.losses import MeanSquaredError, SoftmaxCrossEntropy
from framework.optimizers import SGD, Adam, AdamW, Optimizer, RMSProp
from framework.schedules import CosineAnnealingLR, ExponentialLR, LinearWarmup, ReduceLROnPlateau, StepLR

from .objective import tracked_metrics

PLATEAU_MONITOR = "val_loss"  # what the plateau schedule watches (what early stopping watches too)


def hidden_widths(train: dict) -> list[int]:
    """The hidden layers' widths: `hidden` when given, else hidden_units x hidden_layers."""
    return list(train["hidden"]) if train.get("hidden") else [train["hidden_units"]] * train["hidden_layers"]


def layer_sizes(train: dict, n_features: int, n_outputs: int) -> list[int]:
    """Input, hidden and output widths of the MLP."""
    return [n_features, *hidden_widths(train), n_outputs]


def parameter_count(train: dict, n_features: int, n_outputs: int) -> int:
    """Trained weights of the MLP a parameter set builds (BatchNorm's gamma and beta included): the
    'simplicity' one_se prefers."""
    sizes = layer_sizes(train, n_features, n_outputs)
    dense = sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))
    return dense + (2 * sum(sizes[1:-1]) if train.get("batchnorm") else 0)


def build_model(train: dict, n_features: int, n_outputs: int, task: str, seed: int) -> Model:
    """The compiled network for the training settings `train`, its weights drawn from `seed`."""
    model = mlp(layer_sizes(train, n_features, n_outputs), activation=train["activation"], dropout=train["dropout"],
                init=None if train["init"] == "auto" else train["init"], batchnorm=train["batchnorm"], seed=seed)
    loss = (SoftmaxCrossEntropy(label_smoothing=train["label_smoothing"]) if task == "classification"
            else MeanSquaredError())
    model.compile(loss=loss, optimizer=build_optimizer(train), metrics=tracked_metrics(task, n_outputs))
    return model


def build_optimizer(train: dict) -> Optimizer:
    """The settings' optimizer with their lr, weight decay and gradient clipping (0 = off)."""
    common = {"lr": train["lr"], "weight_decay": train["weight_decay"], "clip_norm": train["clip_norm"] or None}
    if train["optimizer"] == "sgd":
        return SGD(momentum=train["momentum"], **common)
    if train["optimizer"] in ("adam", "adamw"):
        kind = Adam if train["optimizer"] == "adam" else AdamW
        return kind(beta1=train["beta1"], beta2=train["beta2"], **common)
    return RMSProp(**common)


def build_schedule(train: dict) -> list[Callback]:
    """The learning-rate schedule of the settings as fit callbacks (none for a constant lr without warm-up).

    The warm-up comes first; cosine anneals over the epochs after it. Plateau watches val_loss from
    the first epoch on (torch chains it beside a warm-up, never after one).
    """
    kind, warmup, epochs = train["schedule"], train["warmup_epochs"], train["epochs"]
    after = {"step": lambda: StepLR(train["step_size"], train["gamma"]),
             "exponential": lambda: ExponentialLR(train["gamma"]),
             "cosine": lambda: CosineAnnealingLR(max(epochs - warmup, 1), train["min_lr"])}.get(kind)
    callbacks: list[Callback] = []
    if warmup:
        callbacks.append(LinearWarmup(warmup, then=after() if after else None))
    elif after:
        callbacks.append(after())
    if kind == "plateau":
        callbacks.append(ReduceLROnPlateau(PLATEAU_MONITOR, factor=train["gamma"], patience=train["plateau_patience"],
                                           min_lr=train["min_lr"]))
    return callbacks


class ContinuedSchedule(Callback):
    """A schedule carried on from epoch `start` in a later fit, as if training had never stopped.

    Successive halving trains a trial in segments, each a fit of its own; a schedule restarting at
    each would warm up and decay again. The schedule is begun once and replayed over the epochs
    already trained (their logs: plateau needs val_loss), then sees this fit's epochs numbered on.
    """

    def __init__(self, schedule: list[Callback], model: Model, past_logs: list[dict]) -> None:
        self.schedule, self.start = schedule, len(past_logs)
        for callback in schedule:
            callback.model = model
            callback.on_train_begin()
        for epoch, logs in enumerate(past_logs):
            self.on_epoch_begin(epoch - self.start)
            self.on_epoch_end(epoch - self.start, logs)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        for callback in self.schedule:
            callback.on_epoch_begin(epoch + self.start)

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        for callback in self.schedule:
            callback.on_epoch_end(epoch + self.start, logs)


def uses_schedule(train: dict) -> bool:
    """Whether the settings' lr changes during training."""
    return train["schedule"] != "constant" or train["warmup_epochs"] > 0


class FollowLearningRates(Callback):
    """Train epoch e with lrs[e]: the final refit retraces the chosen trial's learning rates (it has no
    validation data of its own, which a plateau schedule would need)."""

    def __init__(self, lrs: list[float]) -> None:
        self.lrs = lrs

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.model.optimizer.lr = self.lrs[epoch]
