"""The compiled network a parameter set describes: the same for every trial and for the final refit."""

from __future__ import annotations

from framework import Model, mlp
from framework.losses import MeanSquaredError, SoftmaxCrossEntropy
from framework.optimizers import SGD, Adam, Optimizer, RMSProp

from .objective import tracked_metrics


def layer_sizes(train: dict, n_features: int, n_outputs: int) -> list[int]:
    """Input, hidden and output widths of the MLP."""
    return [n_features] + [train["hidden_units"]] * train["hidden_layers"] + [n_outputs]


def parameter_count(train: dict, n_features: int, n_outputs: int) -> int:
    """Weights and biases of the MLP a parameter set builds: the 'simplicity' one_se prefers."""
    sizes = layer_sizes(train, n_features, n_outputs)
    return sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))


def build_model(train: dict, n_features: int, n_outputs: int, task: str, seed: int) -> Model:
    """The compiled network for the training settings `train`, its weights drawn from `seed`."""
    model = mlp(layer_sizes(train, n_features, n_outputs), activation=train["activation"], dropout=train["dropout"],
                seed=seed)
    loss = SoftmaxCrossEntropy() if task == "classification" else MeanSquaredError()
    model.compile(loss=loss, optimizer=build_optimizer(train), metrics=tracked_metrics(task, n_outputs))
    return model


def build_optimizer(train: dict) -> Optimizer:
    """SGD (with `momentum`), Adam or RMSProp with the settings' lr and weight_decay."""
    lr, decay = train["lr"], train["weight_decay"]
    if train["optimizer"] == "sgd":
        return SGD(lr=lr, momentum=train["momentum"], weight_decay=decay)
    if train["optimizer"] == "adam":
        return Adam(lr=lr, weight_decay=decay)
    return RMSProp(lr=lr, weight_decay=decay)
