"""Analytic gradients of every layer, activation and loss against central finite differences (float64)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from framework import Dense, Dropout, LeakyReLU, Model, ReLU, Sigmoid, Softmax, Tanh
from framework.activations import sigmoid, softmax
from framework.losses import (
    BCEWithLogits,
    BinaryCrossEntropy,
    CategoricalCrossEntropy,
    MeanSquaredError,
    SoftmaxCrossEntropy,
)
from framework.optimizers import SGD

BATCHES = (1, 3, 7)
WIDTHS = (1, 4, 9)


def built(layer, seed: int = 0):
    """The layer built in float64 from a fixed seed."""
    layer.build(np.random.default_rng(seed), np.float64)
    return layer


def projection_check(layer, x, numerical_gradient, assert_gradient_close, seed: int):
    """Check `layer.backward` for the scalar L = sum(forward(x) * G) with a random G (so dL/dout = G)."""
    G = np.random.default_rng(seed).normal(size=layer.forward(x, training=True).shape)

    def f() -> float:
        return float(np.sum(layer.forward(x, training=True) * G))

    layer.forward(x, training=True)
    dx = layer.backward(G.copy())
    analytic = {name: grad.copy() for name, grad in layer.grads.items()}
    assert_gradient_close(dx, numerical_gradient(f, x))
    for name, param in layer.params.items():
        assert_gradient_close(analytic[name], numerical_gradient(f, param))
    return dx


# ---------------------------------------------------------------------------------------------- layers
@pytest.mark.parametrize("batch,n_in,n_out", list(itertools.product(BATCHES, WIDTHS, WIDTHS)))
def test_dense_gradients_match_finite_differences(batch, n_in, n_out, numerical_gradient, assert_gradient_close):
    rng = np.random.default_rng(100 * batch + 10 * n_in + n_out)
    layer = built(Dense(n_in, n_out))
    layer.params["b"][...] = rng.normal(size=n_out)  # a non-zero bias, so db and the forward sum are exercised
    x = rng.normal(size=(batch, n_in))

    np.testing.assert_allclose(layer.forward(x), x @ layer.params["W"] + layer.params["b"], rtol=1e-12)
    projection_check(layer, x, numerical_gradient, assert_gradient_close, seed=batch + n_in + n_out)
    assert layer.grads["W"].shape == (n_in, n_out) and layer.grads["b"].shape == (n_out,)
    assert layer.grads["W"].dtype == np.float64


@pytest.mark.parametrize("rate", [0.25, 0.5])
@pytest.mark.parametrize("batch,width", [(3, 4), (7, 9), (1, 9)])
def test_dropout_gradient_with_fixed_mask(rate, batch, width, numerical_gradient, assert_gradient_close):
    layer = built(Dropout(rate))
    x = np.random.default_rng(width).normal(size=(batch, width)) + 2.0  # no zeros: dropped units are visible

    def forward_fixed_mask(_x, training=True):
        layer.rng = np.random.default_rng(7)  # the same mask on every call
        return Dropout.forward(layer, _x, training)

    layer.forward = forward_fixed_mask
    out = layer.forward(x)
    dropped = out == 0
    assert dropped.any() and (~dropped).any(), "the fixed mask should drop some units and keep others"
    np.testing.assert_allclose(out[~dropped], x[~dropped] / (1 - rate), rtol=1e-12)

    dx = projection_check(layer, x, numerical_gradient, assert_gradient_close, seed=batch * width)
    assert np.all(dx[dropped] == 0)


def test_dropout_is_identity_outside_training():
    layer = built(Dropout(0.5))
    x = np.random.default_rng(0).normal(size=(5, 6))
    assert np.array_equal(layer.forward(x, training=False), x)
    grad = np.ones_like(x)
    assert np.array_equal(layer.backward(grad), grad)
    assert np.array_equal(built(Dropout(0.0)).forward(x, training=True), x)


def test_dropout_drops_about_rate_and_keeps_the_mean():
    layer = built(Dropout(0.3), seed=1)
    x = np.ones((200, 50))
    out = layer.forward(x, training=True)
    assert abs(np.mean(out == 0) - 0.3) < 0.02
    assert abs(out.mean() - 1.0) < 0.03  # inverted dropout: expectation unchanged


# ---------------------------------------------------------------------------------------------- activations
ACTIVATIONS = {
    "relu": (ReLU, lambda x: np.maximum(x, 0)),
    "leaky_relu": (lambda: LeakyReLU(0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    "sigmoid": (Sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    "tanh": (Tanh, np.tanh),
    "softmax": (Softmax, lambda x: np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)),
}


@pytest.mark.parametrize("batch,width", list(itertools.product(BATCHES, WIDTHS)))
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_gradients_match_finite_differences(name, batch, width, numerical_gradient,
                                                       assert_gradient_close, away_from_zero):
    if name == "softmax" and width == 1:
        width = 2  # a one-column softmax is constant: its gradient is zero
    make, reference = ACTIVATIONS[name]
    layer = built(make())
    x = away_from_zero(np.random.default_rng(10 * batch + width).normal(scale=2.0, size=(batch, width)))

    np.testing.assert_allclose(layer.forward(x), reference(x), rtol=1e-12, atol=1e-15)
    projection_check(layer, x, numerical_gradient, assert_gradient_close, seed=batch + width)


def test_sigmoid_and_softmax_are_stable_for_huge_inputs():
    x = np.array([[-1000.0, 0.0, 1000.0]])
    np.testing.assert_array_equal(built(Sigmoid()).forward(x), [[0.0, 0.5, 1.0]])
    np.testing.assert_allclose(built(Softmax()).forward(x), [[0.0, 0.0, 1.0]])
    assert np.array_equal(built(Softmax()).forward(np.array([[1e4, 1e4]])), [[0.5, 0.5]])


# ---------------------------------------------------------------------------------------------- losses
def one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k)[labels]


def loss_case(name: str, batch: int, k: int, rng: np.random.Generator):
    """(loss, network output, raw targets, n_out, reference loss value) for one loss and label form."""
    labels = rng.integers(0, k, size=batch)
    logits = rng.normal(size=(batch, k))
    if name == "mse_vector":
        out, y = rng.normal(size=(batch, 1)), rng.normal(size=batch)
        return MeanSquaredError(), out, y, 1, np.mean((out[:, 0] - y) ** 2)
    if name == "mse_matrix":
        out, y = rng.normal(size=(batch, k)), rng.normal(size=(batch, k))
        return MeanSquaredError(), out, y, k, np.mean((out - y) ** 2)
    if name == "mse_labels":  # integer labels against k outputs: one-hot targets
        out = rng.normal(size=(batch, k))
        return MeanSquaredError(), out, labels, k, np.mean((out - one_hot(labels, k)) ** 2)
    if name == "softmax_ce_soft":  # probability rows that do not sum to 1 (torch: gradient p * sum(y) - y)
        y = rng.uniform(0, 1, size=(batch, k))
        return SoftmaxCrossEntropy(), logits, y, k, -np.sum(y * np.log(softmax(logits))) / batch
    if name.startswith("softmax_ce"):
        y = labels if name.endswith("int") else one_hot(labels, k)
        ref = -np.mean(np.log(softmax(logits)[np.arange(batch), labels]))
        return SoftmaxCrossEntropy(), logits, y, k, ref
    if name.startswith("categorical_ce"):
        p = softmax(logits)
        y = labels if name.endswith("int") else one_hot(labels, k)
        return CategoricalCrossEntropy(), p, y, k, -np.mean(np.log(p[np.arange(batch), labels]))
    if name == "binary_ce_int":
        p = rng.uniform(0.05, 0.95, size=(batch, 1))
        y = rng.integers(0, 2, size=batch)
        ref = -np.mean(y * np.log(p[:, 0]) + (1 - y) * np.log(1 - p[:, 0]))
        return BinaryCrossEntropy(), p, y, 1, ref
    if name == "binary_ce_onehot":
        p = rng.uniform(0.05, 0.95, size=(batch, k))
        y = one_hot(labels, k)
        return BinaryCrossEntropy(), p, y, k, -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    if name == "binary_ce_soft":
        p = rng.uniform(0.05, 0.95, size=(batch, k))
        y = rng.uniform(0, 1, size=(batch, k))
        return BinaryCrossEntropy(), p, y, k, -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    if name.startswith("bce_logits"):
        z = rng.normal(scale=3.0, size=(batch, 1 if name.endswith("int") else k))
        y = rng.integers(0, 2, size=batch) if name.endswith("int") else rng.uniform(0, 1, size=z.shape)
        t, s = y.reshape(z.shape), sigmoid(z)
        return BCEWithLogits(), z, y, z.shape[1], -np.mean(t * np.log(s) + (1 - t) * np.log(1 - s))
    raise AssertionError(name)


LOSS_CASES = ["mse_vector", "mse_matrix", "mse_labels", "softmax_ce_int", "softmax_ce_onehot", "softmax_ce_soft",
              "categorical_ce_int", "categorical_ce_onehot", "binary_ce_int", "binary_ce_onehot", "binary_ce_soft",
              "bce_logits_int", "bce_logits_multilabel"]


@pytest.mark.parametrize("batch,k", [(1, 2), (3, 4), (7, 9)])
@pytest.mark.parametrize("case", LOSS_CASES)
def test_loss_value_and_gradient(case, batch, k, numerical_gradient, assert_gradient_close):
    loss, out, y, n_out, expected = loss_case(case, batch, k, np.random.default_rng(batch * k))
    t = loss.prepare_targets(y, n_out, np.float64)

    value = loss.forward(out, t)
    assert isinstance(value, float)
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    analytic = loss.backward().copy()
    assert analytic.shape == out.shape
    assert_gradient_close(analytic, numerical_gradient(lambda: loss.forward(out, t), out))


@pytest.mark.parametrize("loss_cls", [SoftmaxCrossEntropy, CategoricalCrossEntropy])
def test_integer_and_one_hot_labels_agree(loss_cls):
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 4, size=6)
    out = softmax(rng.normal(size=(6, 4)))
    loss = loss_cls()
    t_int = loss.prepare_targets(labels, 4, np.float64)
    t_hot = loss.prepare_targets(one_hot(labels, 4), 4, np.float64)
    assert t_int.dtype == np.int64 and t_int.shape == (6,)
    assert t_hot.dtype == np.float64 and t_hot.shape == (6, 4)
    value_int, grad_int = loss.forward(out.copy(), t_int), loss.backward().copy()
    value_hot, grad_hot = loss.forward(out.copy(), t_hot), loss.backward().copy()
    np.testing.assert_allclose(value_int, value_hot, rtol=1e-14)
    np.testing.assert_allclose(grad_int, grad_hot, rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("smoothing", [0.1, 0.5, 1.0])
@pytest.mark.parametrize("targets", ["int", "onehot", "soft"])
@pytest.mark.parametrize("batch,k", [(1, 2), (3, 4), (7, 9)])
def test_label_smoothing_value_and_gradient(smoothing, targets, batch, k, numerical_gradient, assert_gradient_close):
    """The loss of the smoothed target (1 - eps) y + eps / k, and its gradient by finite differences."""
    rng = np.random.default_rng(batch * k)
    logits, labels = rng.normal(scale=2.0, size=(batch, k)), rng.integers(0, k, size=batch)
    y = {"int": labels, "onehot": one_hot(labels, k), "soft": rng.uniform(0, 1, size=(batch, k))}[targets]
    dense = y if y.ndim == 2 else one_hot(labels, k)
    expected = -np.sum(((1 - smoothing) * dense + smoothing / k) * np.log(softmax(logits))) / batch
    loss = SoftmaxCrossEntropy(label_smoothing=smoothing)
    t = loss.prepare_targets(y, k, np.float64)
    np.testing.assert_allclose(loss.forward(logits, t), expected, rtol=1e-12)
    analytic = loss.backward().copy()
    assert_gradient_close(analytic, numerical_gradient(lambda: loss.forward(logits, t), logits))
    if targets == "onehot":  # labels and their one-hot rows are the same target
        loss.forward(logits, labels)
        np.testing.assert_allclose(loss.backward(), analytic, rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("loss_cls", [CategoricalCrossEntropy, BinaryCrossEntropy])
def test_clipped_losses_have_the_gradient_of_their_clipped_forward(loss_cls, numerical_gradient,
                                                                   assert_gradient_close):
    """Outputs beyond [eps, 1 - eps] get gradient 0; eps is large so finite differences stay on one side."""
    loss = loss_cls(eps=0.01)
    rng = np.random.default_rng(8)
    out = rng.uniform(0.05, 0.95, size=(6, 3))
    out[[0, 1, 2, 3], [0, 1, 2, 0]] = [0.001, 0.995, 0.0, 1.0]  # below, above, and the extremes
    t = loss.prepare_targets(one_hot(np.array([0, 1, 0, 2, 1, 2]), 3), 3, np.float64)
    loss.forward(out, t)
    analytic = loss.backward().copy()
    assert_gradient_close(analytic, numerical_gradient(lambda: loss.forward(out, t), out))
    assert np.all(analytic[[0, 1, 2, 3], [0, 1, 2, 0]] == 0)


def test_softmax_cross_entropy_gradient_is_p_minus_y_over_n():
    rng = np.random.default_rng(3)
    logits, labels = rng.normal(size=(5, 3)), rng.integers(0, 3, size=5)
    loss = SoftmaxCrossEntropy()
    loss.forward(logits, loss.prepare_targets(labels, 3, np.float64))
    np.testing.assert_allclose(loss.backward(), (softmax(logits) - one_hot(labels, 3)) / 5, rtol=1e-12)
    np.testing.assert_allclose(loss.output_transform(logits), softmax(logits))


# ---------------------------------------------------------------------------------------------- whole model
def test_whole_model_gradients_match_finite_differences(numerical_gradient, assert_gradient_close):
    rng = np.random.default_rng(11)
    model = Model([Dense(5, 6), ReLU(), Dense(6, 7), Tanh(), Dense(7, 3)], seed=3, dtype="float64")
    model.compile(SoftmaxCrossEntropy(), SGD(lr=0.1))
    for layer in model.layers:
        if isinstance(layer, Dense):
            layer.params["b"][...] = rng.normal(scale=0.5, size=layer.n_out)
    X = rng.normal(size=(7, 5))
    y = model.loss.prepare_targets(rng.integers(0, 3, size=7), 3, np.float64)
    pre_relu = model.layers[0].forward(X)
    assert np.abs(pre_relu).min() > 1e-3, "data too close to the ReLU kink for finite differences"

    def f() -> float:
        return model.loss.forward(model.forward(X, training=True), y)

    f()
    model.backward(model.loss.backward())
    analytic = [g.copy() for layer in model.layers for g in layer.grads.values()]
    assert len(analytic) == 6
    params = [p for layer in model.layers for p in layer.params.values()]
    for param, grad in zip(params, analytic, strict=True):
        assert_gradient_close(grad, numerical_gradient(f, param))


def test_train_on_batch_takes_one_sgd_step_along_the_gradient():
    rng = np.random.default_rng(2)
    model = Model([Dense(4, 5), Tanh(), Dense(5, 3)], seed=0, dtype="float64")
    model.compile(SoftmaxCrossEntropy(), SGD(lr=0.5))
    X, y = rng.normal(size=(6, 4)), rng.integers(0, 3, size=6)
    before = model.get_weights()
    expected_loss = model.evaluate(X, y)["loss"]
    model.loss.forward(model.forward(X, training=True), model.loss.prepare_targets(y, 3, np.float64))
    model.backward(model.loss.backward())
    grads = [g.copy() for layer in model.layers for g in layer.grads.values()]

    loss = model.train_on_batch(X, y)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-12)
    for w0, w1, g in zip(before, model.get_weights(), grads, strict=True):
        np.testing.assert_allclose(w1, w0 - 0.5 * g, rtol=1e-12, atol=1e-15)
