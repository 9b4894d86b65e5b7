"""Bad input raises ValueError/TypeError whose message names the argument or layer, the expected and the received."""

from __future__ import annotations

import numpy as np
import pytest

from framework import Dense, Dropout, EarlyStopping, LeakyReLU, Model, ReLU, Tanh, mlp
from framework.activations import get_activation
from framework.initializers import initialize
from framework.losses import BinaryCrossEntropy, MeanSquaredError, SoftmaxCrossEntropy, get_loss
from framework.optimizers import SGD, Adam, AdamW, RMSProp, get_optimizer


@pytest.fixture
def model(small_classifier):
    """A compiled 4-in, 3-out classifier (a fresh one per test)."""
    return small_classifier()


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(10, 4)), rng.integers(0, 3, size=10)


def every_entry_point(model, X, y):
    """fit, evaluate and train_on_batch with the same inputs."""
    return [
        lambda: model.fit(X, y, epochs=1),
        lambda: model.evaluate(X, y),
        lambda: model.train_on_batch(X, y),
    ]


# ---------------------------------------------------------------------------------------------- X
def test_wrong_feature_width_names_the_layer_and_both_widths(model, data):
    X, y = data
    X5 = np.ones((10, 5))
    for call in [*every_entry_point(model, X5, y), lambda: model.predict(X5)]:
        with pytest.raises(ValueError, match=r"X: the first layer Dense\(4 -> 8.*expects 4 features, got 5"):
            call()
    with pytest.raises(ValueError, match=r"val_X: the first layer Dense\(4 -> 8.*expects 4 features, got 5"):
        model.fit(X, y, validation_data=(X5, y))


def test_one_dimensional_X_is_refused(model, data):
    _, y = data
    with pytest.raises(ValueError, match=r"X: expected a 2-D array of shape \(n_samples, 4\), got shape \(4,\)"):
        model.predict(np.ones(4))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_X_is_refused(model, data, bad):
    X, y = data
    X = X.copy()
    X[3, 2] = bad
    for call in [*every_entry_point(model, X, y), lambda: model.predict(X)]:
        with pytest.raises(ValueError, match="X: expected finite values, got NaN or inf"):
            call()


def test_empty_X_is_refused(model, data):
    _, y = data
    with pytest.raises(ValueError, match=r"X: expected at least one sample, got an empty array of shape \(0, 4\)"):
        model.fit(np.empty((0, 4)), y[:0])
    with pytest.raises(ValueError, match=r"X: expected at least one sample"):
        model.predict(np.empty((0, 4)))
    with pytest.raises(ValueError, match=r"X: expected a 2-D array .* got shape \(0,\)"):
        model.predict([])


@pytest.mark.parametrize("X", [np.array([["a", "b", "c", "d"]] * 10), np.array([[object()] * 4] * 10)],
                         ids=["strings", "objects"])
def test_non_numeric_X_is_a_type_error(model, data, X):
    _, y = data
    for call in [*every_entry_point(model, X, y), lambda: model.predict(X)]:
        with pytest.raises(TypeError, match=rf"X: expected a numeric array, got dtype {X.dtype}"):
            call()


# ---------------------------------------------------------------------------------------------- y
def test_labels_out_of_range_name_the_valid_range_and_the_values(model, data):
    X, _ = data
    y = np.array([0, 1, 2, 3, 0, 1, 2, 0, 1, 2])
    for call in every_entry_point(model, X, y):
        with pytest.raises(ValueError, match=r"SoftmaxCrossEntropy: labels must be in \[0, 2\] for a network with 3 "
                                             r"outputs, got values in \[0, 3\]"):
            call()
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\].*got values in \[-1, 2\]"):
        model.fit(X, np.array([-1, 0, 1, 2, 0, 1, 2, 0, 1, 2]))


def test_labels_of_wrong_length_name_both_lengths(model, data):
    X, y = data
    for call in every_entry_point(model, X, y[:7]):
        with pytest.raises(ValueError, match=r"y: expected 10 targets \(one per row of X\), got 7"):
            call()
    with pytest.raises(ValueError, match=r"val_y: expected 10 targets \(one per row of val_X\), got 7"):
        model.fit(X, y, validation_data=(X, y[:7]))


def test_labels_of_wrong_shape_or_kind(model, data):
    X, y = data
    with pytest.raises(ValueError, match=r"expected labels of shape \(n,\) or one-hot \(n, 3\), got shape \(10, 4\)"):
        model.fit(X, np.zeros((10, 4)))
    with pytest.raises(ValueError, match="class labels must be whole numbers"):
        model.fit(X, y + 0.5)
    with pytest.raises(TypeError, match=r"SoftmaxCrossEntropy: labels must be numeric, got dtype <U1"):
        model.fit(X, np.array(list("abcabcabca")))


def test_regression_and_binary_targets_are_checked():
    reg = Model([Dense(4, 2)], seed=0).compile(MeanSquaredError())
    with pytest.raises(ValueError, match=r"MeanSquaredError: expected targets of shape \(n, 2\) or \(n,\), "
                                         r"got shape \(10, 3\)"):
        reg.fit(np.ones((10, 4)), np.ones((10, 3)))
    with pytest.raises(ValueError, match="MeanSquaredError: targets contain NaN or inf"):
        reg.fit(np.ones((2, 4)), np.array([[1.0, np.nan], [0.0, 0.0]]))
    binary = Model([Dense(4, 1)], seed=0).compile(BinaryCrossEntropy())
    with pytest.raises(ValueError, match=r"BinaryCrossEntropy: targets must be in \[0, 1\]"):
        binary.fit(np.ones((3, 4)), np.array([0, 1, 2]))


# ---------------------------------------------------------------------------------------------- fit arguments
@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True, "32"])
def test_bad_batch_size_is_refused(model, data, batch_size):
    X, y = data
    with pytest.raises(ValueError, match=rf"batch_size must be an integer >= 1, got {batch_size!r}"):
        model.fit(X, y, batch_size=batch_size)
    with pytest.raises(ValueError, match=rf"batch_size must be an integer >= 1, got {batch_size!r}"):
        model.predict(X, batch_size=batch_size)
    with pytest.raises(ValueError, match=rf"batch_size must be an integer >= 1, got {batch_size!r}"):
        model.evaluate(X, y, batch_size=batch_size)


@pytest.mark.parametrize("kwargs,message", [
    ({"epochs": -1}, r"fit: epochs must be an integer >= 0, got -1"),
    ({"epochs": 1.5}, r"fit: epochs must be an integer >= 0, got 1.5"),
    ({"seed": -1}, r"fit: seed must be a non-negative integer or None, got -1"),
    ({"seed": "x"}, r"fit: seed must be a non-negative integer or None, got 'x'"),
    ({"validation_data": np.ones((3, 4))}, r"fit: validation_data must be a tuple \(X_val, y_val\)"),
])
def test_bad_fit_arguments(model, data, kwargs, message):
    X, y = data
    with pytest.raises(ValueError, match=message):
        model.fit(X, y, **kwargs)


def test_using_the_model_before_compile(data):
    X, y = data
    model = Model([Dense(4, 3)], seed=0)
    for what, call in [("fit", lambda: model.fit(X, y)), ("evaluate", lambda: model.evaluate(X, y)),
                       ("train_on_batch", lambda: model.train_on_batch(X, y))]:
        with pytest.raises(ValueError, match=rf"{what}: the model is not compiled; call model.compile"):
            call()
    assert model.predict(X).shape == (10, 3)  # raw outputs need no loss


# ---------------------------------------------------------------------------------------------- construction
def test_dense_chain_mismatch_names_both_layers():
    with pytest.raises(ValueError, match=r"Model: Dense\(4 -> 8, init='he'\) outputs 8 features but the next layer "
                                         r"Dense\(6 -> 3, init='he'\) expects 6"):
        Model([Dense(4, 8), ReLU(), Dense(6, 3)])


def test_bad_model_construction():
    with pytest.raises(ValueError, match="Model: expected a non-empty list of layers, got none"):
        Model([])
    with pytest.raises(TypeError, match="Model: layer 1 must be a Layer .*got str"):
        Model([Dense(2, 2), "relu"])
    with pytest.raises(ValueError, match="Model: expected at least one Dense layer, got none"):
        Model([ReLU()])
    with pytest.raises(ValueError, match="Model: dtype must be one of float32, float64, got 'float16'"):
        Model([Dense(2, 2)], dtype="float16")
    with pytest.raises(ValueError, match="Model: seed must be a non-negative integer or None, got -1"):
        Model([Dense(2, 2)], seed=-1)


@pytest.mark.parametrize("kwargs,message", [
    ({"n_in": 0, "n_out": 3}, "Dense: n_in must be a positive integer, got 0"),
    ({"n_in": 4, "n_out": 2.0}, "Dense: n_out must be a positive integer, got 2.0"),
    ({"n_in": 4, "n_out": 3, "init": "uniform"},
     "Dense: unknown init 'uniform'; expected one of he, xavier, glorot, normal"),
])
def test_bad_dense_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Dense(**kwargs)


def test_unknown_initializer_name():
    with pytest.raises(ValueError, match="init: unknown initializer 'zeros'; expected one of he, xavier"):
        initialize("zeros", 3, 2, np.random.default_rng(0), np.float32)
    with pytest.raises(ValueError, match="Dense: unknown init 'zeros'"):
        mlp([4, 3], init="zeros")


@pytest.mark.parametrize("rate", [1.0, -0.1, "0.5", None])
def test_bad_dropout_rate(rate):
    with pytest.raises(ValueError, match=rf"Dropout: rate must be a number in \[0, 1\), got {rate!r}"):
        Dropout(rate)


def test_bad_leaky_relu_slope():
    with pytest.raises(ValueError, match="LeakyReLU: negative_slope must be a number >= 0, got -0.1"):
        LeakyReLU(-0.1)


@pytest.mark.parametrize("name", ["gelu", "ReLU", "", None, ["relu"]])
def test_unknown_activation_name(name):
    message = rf"activation: unknown name {name!r}; expected one of relu, leaky_relu, sigmoid, tanh, softmax"
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        get_activation(name)
    with pytest.raises(ValueError, match="activation: unknown name"):
        mlp([4, 8, 3], activation=name)
    with pytest.raises(ValueError, match="activation: unknown name"):
        mlp([4, 8, 3], output_activation=name or "nope")


def test_mlp_needs_two_sizes():
    with pytest.raises(ValueError, match=r"mlp: sizes needs at least an input and an output width, got \[4\]"):
        mlp([4])


def test_known_activation_names_give_the_right_layers():
    assert isinstance(get_activation("relu"), ReLU) and isinstance(get_activation("tanh"), Tanh)
    assert get_activation("relu") is not get_activation("relu")  # a new layer each time


# ---------------------------------------------------------------------------------------------- compile
def test_unknown_loss_optimizer_or_metric():
    model = Model([Dense(2, 2)], seed=0)
    with pytest.raises(ValueError, match="loss: unknown loss 'hinge'; expected a Loss or one of"):
        model.compile("hinge")
    with pytest.raises(ValueError,
                       match="optimizer: unknown optimizer 'adagrad'; expected one of sgd, adam, adamw, rmsprop"):
        model.compile("mse", "adagrad")
    with pytest.raises(ValueError, match="compile: unknown metric 'auc'; expected one of accuracy, balanced_accuracy"):
        model.compile(SoftmaxCrossEntropy(), metrics=["auc"])
    with pytest.raises(ValueError, match="compile: metric 'accuracy' needs a classification loss, "
                                         "got MeanSquaredError"):
        model.compile("mse", metrics=["accuracy"])
    assert isinstance(get_loss("MeanSquaredError"), MeanSquaredError)
    assert isinstance(get_optimizer("ADAM", lr=0.1), Adam)
    assert isinstance(get_optimizer("adamw", lr=0.1, amsgrad=True), AdamW)


@pytest.mark.parametrize("make,message", [
    (lambda: SGD(lr=0), r"SGD: lr must be a number > 0, got 0"),
    (lambda: SGD(lr=0.1, momentum=-0.5), r"SGD: momentum must be a number >= 0, got -0.5"),
    (lambda: SGD(lr=0.1, nesterov=True), r"SGD: nesterov needs momentum > 0 and dampening 0, got momentum=0.0"),
    (lambda: SGD(lr=float("nan")), r"SGD: lr must be a number > 0, got nan"),
    (lambda: Adam(beta1=1.0), r"Adam: beta1 must be a number >= 0 and < 1, got 1.0"),
    (lambda: Adam(weight_decay=-1), r"Adam: weight_decay must be a number >= 0, got -1"),
    (lambda: RMSProp(rho=1.5), r"RMSProp: rho must be a number >= 0 and < 1, got 1.5"),
    (lambda: RMSProp(lr="0.1"), r"RMSProp: lr must be a number > 0, got '0.1'"),
    (lambda: SGD(lr=0.1, momentum=0.9, dampening=1.5), r"SGD: dampening must be a number >= 0 and <= 1, got 1.5"),
    (lambda: SGD(lr=0.1, momentum=0.9, nesterov=True, dampening=0.1),
     r"SGD: nesterov needs momentum > 0 and dampening 0, got momentum=0.9, dampening=0.1"),
    (lambda: AdamW(weight_decay=-0.1), r"AdamW: weight_decay must be a number >= 0, got -0.1"),
    (lambda: AdamW(beta2=1), r"AdamW: beta2 must be a number >= 0 and < 1, got 1"),
    (lambda: SGD(clip_norm=-1), r"SGD: clip_norm must be None or a number > 0, got -1"),
    (lambda: Adam(clip_norm=0), r"Adam: clip_norm must be None or a number > 0, got 0"),
    (lambda: RMSProp(clip_value=float("inf")), r"RMSProp: clip_value must be None or a number > 0, got inf"),
    (lambda: AdamW(clip_value=True), r"AdamW: clip_value must be None or a number > 0, got True"),
])
def test_bad_optimizer_hyper_parameters(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_early_stopping_arguments():
    with pytest.raises(ValueError, match="EarlyStopping: patience must be an integer >= 0, got -1"):
        EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="EarlyStopping: mode must be 'auto', 'min' or 'max', got 'up'"):
        EarlyStopping(mode="up")


@pytest.mark.parametrize("value", [1.5, -0.1, float("nan"), "0.1", True])
def test_bad_label_smoothing_is_named(value):
    with pytest.raises(ValueError, match=r"SoftmaxCrossEntropy: label_smoothing must be a number >= 0 and <= 1, got "):
        SoftmaxCrossEntropy(label_smoothing=value)
