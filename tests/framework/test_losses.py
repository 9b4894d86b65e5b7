"""Loss behaviour beyond the gradient checks: target shapes, label ranges, clipping, BCEWithLogits, accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from framework import Dense, Model, Sigmoid, load_model
from framework.activations import sigmoid, softmax
from framework.losses import (
    LOSSES,
    BCEWithLogits,
    BinaryCrossEntropy,
    CategoricalCrossEntropy,
    MeanSquaredError,
    SoftmaxCrossEntropy,
    get_loss,
)
from framework.optimizers import SGD


def one_hot(labels, k):
    return np.eye(k)[labels]


def shape_case(name: str, rng: np.random.Generator):
    """(loss, output, targets (n,), value computed by hand) for each loss and target kind."""
    n = 5
    labels = rng.integers(0, 3, size=n)
    if name == "softmax":
        logits = rng.normal(size=(n, 3))
        return SoftmaxCrossEntropy(), logits, labels, -np.mean(np.log(softmax(logits)[np.arange(n), labels]))
    if name == "categorical":
        p = softmax(rng.normal(size=(n, 3)))
        return CategoricalCrossEntropy(), p, labels, -np.mean(np.log(p[np.arange(n), labels]))
    y = rng.integers(0, 2, size=n)
    if name == "binary":
        p = rng.uniform(0.1, 0.9, size=(n, 1))
        return BinaryCrossEntropy(), p, y, -np.mean(y * np.log(p[:, 0]) + (1 - y) * np.log(1 - p[:, 0]))
    if name == "logits":
        z = rng.normal(size=(n, 1))
        s = sigmoid(z[:, 0])
        return BCEWithLogits(), z, y, -np.mean(y * np.log(s) + (1 - y) * np.log(1 - s))
    if name == "mse_one_output":
        out, t = rng.normal(size=(n, 1)), rng.normal(size=n)
        return MeanSquaredError(), out, t, np.mean((out[:, 0] - t) ** 2)
    if name == "mse_labels":
        out = rng.normal(size=(n, 3))
        return MeanSquaredError(), out, labels, np.mean((out - one_hot(labels, 3)) ** 2)
    raise AssertionError(name)


SHAPE_CASES = ["softmax", "categorical", "binary", "logits", "mse_one_output", "mse_labels"]


# ---------------------------------------------------------------------------------------------- target shapes
@pytest.mark.parametrize("name", SHAPE_CASES)
def test_direct_calls_with_a_column_of_targets_equal_a_vector_and_fit(name):
    loss, output, y, expected = shape_case(name, np.random.default_rng(1))
    results = []
    for targets in (y, y[:, None], loss.prepare_targets(y, output.shape[1], np.float64)):
        value = loss.forward(output, targets)
        results.append((value, loss.backward().copy()))
    np.testing.assert_allclose(results[0][0], expected, rtol=1e-12)  # no (n, n) broadcast
    for value, grad in results[1:]:
        assert value == results[0][0]
        assert grad.shape == output.shape and np.array_equal(grad, results[0][1])


def test_mse_one_hot_encodes_integer_labels_for_several_outputs():
    loss = MeanSquaredError()
    labels = np.array([2, 0, 1, 2])
    np.testing.assert_array_equal(loss.prepare_targets(labels, 3, np.float32), one_hot(labels, 3))
    np.testing.assert_array_equal(loss.prepare_targets(labels[:, None], 3, np.float32), one_hot(labels, 3))
    np.testing.assert_array_equal(loss.prepare_targets(labels.astype(float), 3, np.float32), one_hot(labels, 3))
    with pytest.raises(ValueError, match="MeanSquaredError: class labels must be whole numbers"):
        loss.prepare_targets(np.array([0.5, 1.0, 2.0, 0.0]), 3, np.float32)
    with pytest.raises(ValueError, match=r"MeanSquaredError: labels must be in \[0, 2\] for a network with 3 outputs"):
        loss.prepare_targets(np.array([0, 1, 3, 0]), 3, np.float32)
    with pytest.raises(ValueError, match="MeanSquaredError: class labels must be whole numbers"):
        loss.forward(np.zeros((4, 3)), np.array([0.5, 1.0, 2.0, 0.0]))  # a direct call checks them too


def test_a_direct_call_with_mismatched_targets_is_refused():
    with pytest.raises(ValueError, match=r"BinaryCrossEntropy: expected targets of shape \(4, 2\) or \(4,\), "
                                         r"got shape \(4, 3\)"):
        BinaryCrossEntropy().forward(np.full((4, 2), 0.5), np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"SoftmaxCrossEntropy: expected labels of shape \(4,\) or \(4, 3\), "
                                         r"got shape \(1,\)"):
        SoftmaxCrossEntropy().forward(np.zeros((4, 3)), np.array([1]))


# ---------------------------------------------------------------------------------------------- label ranges
def test_a_single_softmax_output_accepts_only_label_zero():
    loss = SoftmaxCrossEntropy()
    with pytest.raises(ValueError, match=r"SoftmaxCrossEntropy: labels must be in \[0, 0\] for a network with "
                                         r"1 output, got values in \[0, 1\]"):
        loss.prepare_targets(np.array([0, 1, 0]), 1, np.float32)
    model = Model([Dense(2, 1)], seed=0).compile(loss)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 0\] for a network with 1 output"):
        model.fit(np.ones((3, 2)), np.array([0, 1, 0]))
    # label 0 is the only class: loss 0, nothing to learn, always right (torch gives the same)
    result = model.evaluate(np.random.default_rng(0).normal(size=(6, 2)), np.zeros(6, dtype=int))
    assert result == {"loss": 0.0, "accuracy": 1.0}


@pytest.mark.parametrize("loss_cls", [SoftmaxCrossEntropy, CategoricalCrossEntropy])
@pytest.mark.parametrize("labels", [[0, 1, 3], [0, -1, 2], [[0], [3], [1]]])
def test_a_direct_forward_refuses_a_label_outside_the_outputs(loss_cls, labels):
    # Unchecked, label 3 of 3 outputs (or -1) would read another row's logits: a silent wrong loss.
    output = np.random.default_rng(0).random((3, 3))
    with pytest.raises(ValueError, match=rf"{loss_cls.__name__}: labels must be in \[0, 2\] for a network with "
                                         r"3 outputs"):
        loss_cls().forward(output, np.array(labels))


@pytest.mark.parametrize("loss,n_out,good,bad", [
    (CategoricalCrossEntropy(), 3, [0, 1, 2], [0, 3]),
    (BinaryCrossEntropy(), 1, [0, 1], [0, 2]),
    (BCEWithLogits(), 1, [0, 1, 0.25], [0, -1]),
    (SoftmaxCrossEntropy(), 2, [0, 1], [0, 2]),
])
def test_each_loss_has_its_own_label_range(loss, n_out, good, bad):
    assert len(loss.prepare_targets(np.array(good), n_out, np.float64)) == len(good)
    with pytest.raises(ValueError, match=rf"{loss.name}: (labels|targets) must be in"):
        loss.prepare_targets(np.array(bad), n_out, np.float64)


# ---------------------------------------------------------------------------------------------- backward
@pytest.mark.parametrize("name", SHAPE_CASES + ["softmax_rows"])
def test_backward_twice_gives_the_same_gradient_and_never_changes_a_returned_one(name):
    rng = np.random.default_rng(2)
    if name == "softmax_rows":
        loss, output, y = SoftmaxCrossEntropy(), rng.normal(size=(4, 3)), rng.uniform(size=(4, 3))
    else:
        loss, output, y, _ = shape_case(name, rng)
    y = loss.prepare_targets(y, output.shape[1], np.float64)
    loss.forward(output, y)
    first = loss.backward()
    kept = first.copy()
    second = loss.backward()
    assert np.array_equal(second, kept) and np.array_equal(first, kept)
    loss.forward(output * 2 + 1, y)  # the next batch
    third = loss.backward()
    assert np.array_equal(first, kept) and np.array_equal(second, kept)
    assert not np.array_equal(third, kept)


# ---------------------------------------------------------------------------------------------- clipping
@pytest.mark.parametrize("loss_cls", [CategoricalCrossEntropy, BinaryCrossEntropy])
def test_a_perfect_prediction_has_zero_gradient(loss_cls):
    loss = loss_cls()
    output = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    targets = loss.prepare_targets(output.copy(), 3, np.float64)
    value = loss.forward(output, targets)
    assert 0 < value < 1e-6  # -log(1 - eps) per hit: clipped away from log(1) = 0, but tiny
    assert np.array_equal(loss.backward(), np.zeros_like(output))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_bounds_are_those_of_the_outputs_dtype(dtype):
    """On the boundary in the output's own precision, the gradient still passes (torch's clamp)."""
    loss = BinaryCrossEntropy()
    low, high = dtype(1e-7), dtype(1 - 1e-7)
    output = np.array([[low], [high], [np.nextafter(low, dtype(0))], [np.nextafter(high, dtype(1))]], dtype=dtype)
    loss.forward(output, np.array([[1.0], [0.0], [1.0], [0.0]], dtype=dtype))
    grad = loss.backward()
    assert np.all(grad[:2] != 0) and np.all(grad[2:] == 0)


def test_eps_is_checked():
    for eps in (-1e-7, 0.5, "1e-7", True):
        with pytest.raises(ValueError, match=r"eps must be a number in \[0, 0.5\)"):
            CategoricalCrossEntropy(eps=eps)


# ---------------------------------------------------------------------------------------------- BCEWithLogits
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_is_stable_at_huge_logits(dtype):
    z = np.array([[1000.0], [-1000.0], [1000.0], [-1000.0]], dtype=dtype)
    y = np.array([[1.0], [0.0], [0.0], [1.0]], dtype=dtype)
    loss = BCEWithLogits()
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = loss.forward(z, y)
        grad = loss.backward()
    np.testing.assert_allclose(value, 500.0, rtol=1e-6)  # two perfect, two wrong by 1000 each
    np.testing.assert_allclose(grad[:, 0], [0, 0, 0.25, -0.25])
    assert grad.dtype == dtype


def test_bce_with_logits_is_registered_and_predicts_probabilities(tmp_path):
    assert LOSSES["bce_with_logits"] is BCEWithLogits
    assert isinstance(get_loss("bce_with_logits"), BCEWithLogits) and isinstance(get_loss("BCEWithLogits"),
                                                                                 BCEWithLogits)
    model = Model([Dense(4, 1)], seed=0).compile("bce_with_logits", SGD(lr=0.1))
    X = np.random.default_rng(0).normal(size=(8, 4)) * 3
    proba = model.predict(X)
    np.testing.assert_allclose(proba, sigmoid(model.forward(X.astype(np.float32))), rtol=1e-6)
    assert np.all((proba > 0) & (proba < 1))
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert type(loaded.loss) is BCEWithLogits and loaded.predict(X).tobytes() == proba.tobytes()


# ---------------------------------------------------------------------------------------------- accuracy
def multilabel_data(n: int = 40, k: int = 3):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(n, 4))
    Y = (rng.uniform(size=(n, k)) < 0.5).astype(float)
    return X, Y


@pytest.mark.parametrize("fused", [False, True])
def test_multilabel_accuracy_is_element_wise(fused):
    X, Y = multilabel_data()
    layers = [Dense(4, 3)] if fused else [Dense(4, 3), Sigmoid()]
    model = Model(layers, seed=1, dtype="float64").compile(BCEWithLogits() if fused else BinaryCrossEntropy())
    proba = model.predict(X)
    element_wise = np.mean((proba > 0.5) == Y)
    assert element_wise != np.mean(proba.argmax(1) == Y.argmax(1))  # the two readings differ on this data
    assert model.evaluate(X, Y)["accuracy"] == element_wise
    # fit counts the same way: one full batch, so the epoch's accuracy is the starting model's
    history = model.fit(X, Y, epochs=1, batch_size=len(X), shuffle=False)
    assert history.history["accuracy"] == [element_wise]


def test_single_output_logits_are_thresholded_at_zero():
    model = Model([Dense(1, 1)], seed=0, dtype="float64").compile(BCEWithLogits())
    model.set_weights([np.array([[1.0]]), np.array([0.0])])  # logit = x
    X = np.array([[-2.0], [-0.1], [0.1], [3.0]])
    assert model.evaluate(X, np.array([0, 0, 1, 1]))["accuracy"] == 1.0
    assert model.evaluate(X, np.array([0, 1, 1, 0]))["accuracy"] == 0.5
