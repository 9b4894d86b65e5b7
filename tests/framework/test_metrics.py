"""Metrics equal scikit-learn's: the functions on random and edge-case inputs (hypothesis), then in Model."""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from framework import Dense, Dropout, LambdaCallback, Model, ReLU, Sigmoid, Softmax, metrics
from framework.losses import (
    BCEWithLogits,
    BinaryCrossEntropy,
    CategoricalCrossEntropy,
    MeanSquaredError,
    SoftmaxCrossEntropy,
)
from framework.metrics import METRICS

skm = pytest.importorskip("sklearn.metrics")
SETTINGS = settings(max_examples=100, deadline=None)


def sklearn(fn, *args, **kwargs):
    """A scikit-learn metric, its warnings (absent classes, one sample) silenced: the cases are meant."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def same(a: float, b: float, rel: float = 0.0) -> bool:
    """Equal (within `rel`), or both NaN."""
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=rel, abs=rel)


# ---------------------------------------------------------------------------------------------- classification
@st.composite
def class_pairs(draw):
    """(y_true, y_pred, k): random classes, often one class only, perfect, or every row wrong."""
    k = draw(st.integers(1, 8))
    n = draw(st.integers(1, 40))
    labels = hnp.arrays(np.int64, n, elements=st.integers(0, k - 1))
    y_true = draw(labels)
    kind = draw(st.sampled_from(["random", "perfect", "worst", "one_class"]))
    if kind == "one_class":
        y_true = np.full(n, draw(st.integers(0, k - 1)))
    y_pred = {"perfect": y_true, "worst": (y_true + 1) % k}.get(kind, draw(labels))
    return y_true, y_pred, k


@SETTINGS
@given(class_pairs())
def test_balanced_accuracy_and_f1_equal_sklearn(pair):
    y_true, y_pred, k = pair
    confusion = metrics.confusion_matrix(y_true, y_pred, k)
    assert metrics.balanced_accuracy(confusion) == sklearn(skm.balanced_accuracy_score, y_true, y_pred)
    assert metrics.f1(confusion) == sklearn(skm.f1_score, y_true, y_pred, average="macro", zero_division=0)


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    confusion = metrics.confusion_matrix(np.array([0, 0, 2, 2, 2]), np.array([0, 2, 2, 2, 1]), 4)
    np.testing.assert_array_equal(confusion, skm.confusion_matrix([0, 0, 2, 2, 2], [0, 2, 2, 2, 1], labels=range(4)))


@pytest.mark.parametrize("y_true,y_pred,balanced,f1", [
    ([1, 1, 1], [1, 1, 1], 1.0, 1.0),  # one class, all right
    ([1, 1, 1], [0, 0, 2], 0.0, 0.0),  # one class, all wrong
    ([0, 0, 1, 1], [1, 1, 0, 0], 0.0, 0.0),  # every row wrong
    ([0, 0, 0, 1], [0, 0, 0, 2], 0.5, 1 / 3),  # class 2, only predicted, counts for f1 alone
])
def test_classification_edge_cases(y_true, y_pred, balanced, f1):
    confusion = metrics.confusion_matrix(np.array(y_true), np.array(y_pred), 3)
    assert metrics.balanced_accuracy(confusion) == pytest.approx(balanced)
    assert metrics.f1(confusion) == pytest.approx(f1)


# ---------------------------------------------------------------------------------------------- roc auc
def exact_auc(y_true: np.ndarray, score: np.ndarray) -> Fraction:
    """The definition, pair by pair: P(positive scores above negative) + P(tie) / 2."""
    pos, neg = score[y_true == 1], score[y_true == 0]
    wins = sum(Fraction(int(p > q) * 2 + int(p == q), 2) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


@st.composite
def scored_labels(draw):
    """(y_true, score): 0/1 labels and scores, from few distinct values (many ties) or any finite float."""
    n = draw(st.integers(1, 30))
    y_true = draw(hnp.arrays(np.int64, n, elements=st.integers(0, 1)))
    values = st.sampled_from([-1.0, 0.0, 0.5, 1.0]) if draw(st.booleans()) else st.floats(-1e6, 1e6)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    score = draw(hnp.arrays(dtype, n, elements=values.map(dtype)))
    return y_true, score


@SETTINGS
@given(scored_labels())
def test_roc_auc_equals_sklearn_and_the_pairwise_definition(case):
    y_true, score = case
    auc = metrics.roc_auc(y_true, score)
    if len(np.unique(y_true)) < 2:  # sklearn raises: the AUC is undefined
        assert math.isnan(auc)
        return
    assert auc == float(exact_auc(y_true, score))  # correctly rounded
    assert auc == pytest.approx(skm.roc_auc_score(y_true, score), rel=1e-12, abs=1e-15)  # sklearn's trapezoids


@pytest.mark.parametrize("score,auc", [
    ([0.1, 0.2, 0.8, 0.9], 1.0),  # perfect
    ([0.9, 0.8, 0.2, 0.1], 0.0),  # worst
    ([0.5, 0.5, 0.5, 0.5], 0.5),  # all tied: each pair counts half
    ([0.1, 0.5, 0.5, 0.9], 0.875),  # one tie between a negative and a positive
])
def test_roc_auc_edge_cases(score, auc):
    y_true = np.array([0, 0, 1, 1])
    assert metrics.roc_auc(y_true, np.array(score)) == auc == skm.roc_auc_score(y_true, score)


def test_roc_auc_ranks_infinite_scores():  # an overflowing logit; sklearn refuses inf
    assert metrics.roc_auc(np.array([0, 0, 1, 1]), np.array([-np.inf, 0.0, 0.0, np.inf])) == 0.875


def test_roc_auc_is_nan_for_one_class_or_a_nan_score():
    assert math.isnan(metrics.roc_auc(np.array([1, 1, 1]), np.array([0.1, 0.2, 0.3])))
    assert math.isnan(metrics.roc_auc(np.array([0]), np.array([0.1])))
    assert math.isnan(metrics.roc_auc(np.array([0, 1]), np.array([0.1, np.nan])))


# ---------------------------------------------------------------------------------------------- regression
REGRESSION = [(metrics.mse, skm.mean_squared_error), (metrics.rmse, skm.root_mean_squared_error),
              (metrics.mae, skm.mean_absolute_error), (metrics.r2, skm.r2_score)]


@st.composite
def regression_pairs(draw):
    """(y_true, y_pred) float64 (n, k): random, perfect, constant targets, or constant and predicted exactly."""
    n, k = draw(st.integers(1, 25)), draw(st.integers(1, 3))
    floats = st.floats(-1e3, 1e3)
    y_true = draw(hnp.arrays(np.float64, (n, k), elements=floats))
    y_pred = draw(hnp.arrays(np.float64, (n, k), elements=floats))
    kind = draw(st.sampled_from(["random", "perfect", "constant", "constant_perfect"]))
    if kind.startswith("constant"):
        y_true[:, 0] = draw(st.sampled_from([0.0, 0.1, 3.0]))
    if kind.endswith("perfect"):
        y_pred = y_true.copy()
    return y_true, y_pred


@SETTINGS
@given(regression_pairs())
def test_regression_metrics_equal_sklearn(pair):
    y_true, y_pred = pair
    for ours, theirs in REGRESSION:
        assert same(ours(y_true, y_pred), sklearn(theirs, y_true, y_pred), rel=1e-12), ours.__name__


def test_r2_of_a_constant_target_is_finite_as_sklearn_force_finite():
    y_true = np.full((4, 1), 2.0)
    assert metrics.r2(y_true, y_true.copy()) == 1.0 == skm.r2_score(y_true, y_true)
    assert metrics.r2(y_true, y_true + 1) == 0.0 == skm.r2_score(y_true, y_true + 1)
    assert math.isnan(metrics.r2(y_true[:1], y_true[:1]))  # one row: undefined, as sklearn


def test_r2_of_a_nearly_constant_target_is_minus_inf_as_sklearn_without_a_warning():
    """The mean of ten equal tiny values is not exactly them: a denormal total, an overflowing ratio."""
    y_true, y_pred = np.full((10, 1), 1.309823e-144), np.ones((10, 1))
    assert metrics.r2(y_true, y_pred) == -math.inf == sklearn(skm.r2_score, y_true, y_pred)


def test_rmse_averages_each_outputs_root_as_sklearn():
    y_true, y_pred = np.zeros((2, 2)), np.array([[1.0, 3.0], [1.0, 3.0]])
    assert metrics.rmse(y_true, y_pred) == 2.0 == skm.root_mean_squared_error(y_true, y_pred)
    assert metrics.mse(y_true, y_pred) == 5.0


# ---------------------------------------------------------------------------------------------- in Model
def test_the_registry_says_direction_and_kind_of_loss():
    assert {name: (m.higher_is_better, m.task) for name, m in METRICS.items()} == {
        "accuracy": (True, "classification"), "balanced_accuracy": (True, "classification"),
        "f1": (True, "classification"), "roc_auc": (True, "classification"), "mse": (False, "regression"),
        "rmse": (False, "regression"), "mae": (False, "regression"), "r2": (True, "regression")}


def problem(n_out: int, n: int = 90, seed: int = 0):
    """Features and labels in [0, n_out) (0/1 for one output) that a small network half learns."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    labels = (X[:, :3] @ rng.normal(size=(3, max(n_out, 2)))).argmax(axis=1)
    return X, labels


def trained(layers, loss, metric_names, y, seed=0, epochs=3):
    """A model on `problem`'s features, fitted a little so that its predictions are mixed."""
    model = Model(layers, seed=seed).compile(loss, "adam", metrics=metric_names)
    model.fit(problem(1)[0], y, epochs=epochs, batch_size=16, seed=seed)
    return model


CLASSIFIERS = {  # loss, layers, width, the score sklearn ranks (from predict or from the raw output)
    "softmax_3": (SoftmaxCrossEntropy, lambda: [Dense(5, 8), ReLU(), Dense(8, 3)], 3, None),
    "softmax_2": (SoftmaxCrossEntropy, lambda: [Dense(5, 8), ReLU(), Dense(8, 2)], 2, "predict"),
    "categorical_2": (CategoricalCrossEntropy, lambda: [Dense(5, 8), ReLU(), Dense(8, 2), Softmax()], 2, "predict"),
    "sigmoid_bce": (BinaryCrossEntropy, lambda: [Dense(5, 8), ReLU(), Dense(8, 1), Sigmoid()], 1, "predict"),
    "bce_with_logits": (BCEWithLogits, lambda: [Dense(5, 8), ReLU(), Dense(8, 1)], 1, "logits"),
}


@pytest.mark.parametrize("one_hot", [False, True])
@pytest.mark.parametrize("case", list(CLASSIFIERS))
def test_evaluate_equals_sklearn_on_what_the_model_predicts(case, one_hot):
    loss, layers, width, scores = CLASSIFIERS[case]
    X, y = problem(width)
    names = ["accuracy", "balanced_accuracy", "f1"] + (["roc_auc"] if scores else [])
    model = trained(layers(), loss(), names, y)
    targets = np.eye(width)[y] if one_hot and width > 1 else y
    result = model.evaluate(X, targets, batch_size=32)  # several batches, joined for the whole-pass metrics
    proba = model.predict(X, batch_size=32)
    predicted = proba.argmax(axis=1) if width > 1 else (proba[:, 0] > 0.5).astype(int)
    assert len(np.unique(predicted)) > 1, "vacuous: one predicted class"
    assert result["balanced_accuracy"] == skm.balanced_accuracy_score(y, predicted)
    assert result["f1"] == skm.f1_score(y, predicted, average="macro", zero_division=0)
    assert result["accuracy"] == skm.accuracy_score(y, predicted)
    if scores:
        score = proba[:, -1] if scores == "predict" else model.forward(X.astype(np.float32))[:, 0]
        assert result["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score), rel=1e-12)


@pytest.mark.parametrize("width", [1, 2])
def test_regression_metrics_in_evaluate_equal_sklearn(width):
    X, _ = problem(1)
    y = X[:, :width] * 2 + 0.5
    names = ["mse", "rmse", "mae", "r2"]
    model = trained([Dense(5, 8), ReLU(), Dense(8, width)], MeanSquaredError(), names, y, epochs=5)
    result = model.evaluate(X, y, batch_size=32)
    predicted = model.predict(X, batch_size=32).astype(np.float64)
    for name, fn in zip(names, [skm.mean_squared_error, skm.root_mean_squared_error, skm.mean_absolute_error,
                                skm.r2_score]):
        assert result[name] == pytest.approx(fn(y.astype(np.float32).astype(np.float64), predicted), rel=1e-12)
    assert result["mse"] == pytest.approx(result["loss"], rel=1e-5)  # the loss, in float32 over batches


def test_keys_come_in_a_fixed_order_and_repeats_are_dropped():
    X, y = problem(3)
    model = Model([Dense(5, 3)], seed=0).compile(SoftmaxCrossEntropy(), metrics=["f1", "accuracy", "balanced_accuracy",
                                                                                 "f1"])
    assert model.metrics == ["f1", "accuracy", "balanced_accuracy"]
    assert list(model.evaluate(X, y)) == ["loss", "accuracy", "f1", "balanced_accuracy"]
    history = model.fit(X, y, epochs=2, validation_data=(X, y), seed=0)
    assert list(history.history) == ["loss", "accuracy", "val_loss", "val_accuracy", "val_f1", "val_balanced_accuracy",
                                     "lr"]
    assert list(model.fit(X, y, epochs=1).history) == ["loss", "accuracy", "lr"]  # whole-pass metrics need validation
    regressor = Model([Dense(5, 1)], seed=0).compile("mse", metrics=["r2", "rmse"])
    history = regressor.fit(X, X[:, 0], epochs=1, validation_data=(X, X[:, 0]))
    assert list(history.history) == ["loss", "val_loss", "val_r2", "val_rmse", "lr"]


def test_each_epochs_validation_metrics_are_evaluate_at_that_epoch():
    X, y = problem(3)
    Xv, yv = problem(3, n=40, seed=1)
    model = Model([Dense(5, 8), ReLU(), Dense(8, 3)], seed=0).compile("softmax_cross_entropy", "adam",
                                                                      metrics=["balanced_accuracy", "f1"])
    seen = []
    callback = LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append((dict(logs), model.evaluate(Xv, yv))))
    model.fit(X, y, epochs=4, batch_size=16, validation_data=(Xv, yv), seed=0, callbacks=[callback])
    for logs, evaluated in seen:
        assert {key: logs[f"val_{key}"] for key in evaluated} == evaluated
    assert len({logs["val_f1"] for logs, _ in seen}) > 1  # the metric moves with training


# ---------------------------------------------------------------------------------------------- unchanged
@pytest.mark.parametrize("loss,width,extra", [
    (SoftmaxCrossEntropy, 3, ["balanced_accuracy", "f1"]),
    (BCEWithLogits, 1, ["roc_auc", "f1"]),
    (MeanSquaredError, 2, ["mse", "r2"]),
])
def test_extra_metrics_change_nothing_else(loss, width, extra, weights_identical):
    """The same seeds with and without the new metrics: the same weights, predictions and old log values."""
    X, y = problem(width)
    Xv, yv = problem(width, n=30, seed=1)
    if loss is MeanSquaredError:
        y, yv = X[:, :width], Xv[:, :width]
    runs = []
    for names in (None, (["accuracy"] if loss().is_classifier else []) + extra):
        model = Model([Dense(5, 8), ReLU(), Dropout(0.2), Dense(8, width)], seed=3).compile(loss(), "sgd", names)
        runs.append((model, model.fit(X, y, epochs=3, batch_size=16, validation_data=(Xv, yv), seed=4).history))
    (default, logs), (extended, more_logs) = runs
    assert logs == {key: more_logs[key] for key in logs}
    assert list(more_logs) == list(logs)[:-1] + [f"val_{name}" for name in extra] + ["lr"]
    assert weights_identical(default.get_weights(), extended.get_weights())
    assert default.predict(Xv).tobytes() == extended.predict(Xv).tobytes()


def test_default_validation_logs_are_the_batch_sums_they_always_were():
    """val_loss and val_accuracy of a default model, recomputed independently from its output each epoch."""
    X, y = problem(3)
    Xv, yv = problem(3, n=1500, seed=1)  # two evaluation batches of 1024
    model = Model([Dense(5, 8), ReLU(), Dense(8, 3)], seed=0).compile(SoftmaxCrossEntropy(), "adam")
    Xv32 = Xv.astype(np.float32)

    def check(epoch, logs):
        loss, hits = 0.0, 0
        for rows in (slice(0, 1024), slice(1024, None)):
            output = model.forward(Xv32[rows])
            loss += SoftmaxCrossEntropy().forward(output, yv[rows]) * len(output)
            hits += int(np.count_nonzero(output.argmax(axis=1) == yv[rows]))
        assert (logs["val_loss"], logs["val_accuracy"]) == (loss / len(Xv), hits / len(Xv))
        checked.append(epoch)

    checked = []
    model.fit(X, y, epochs=3, validation_data=(Xv, yv), seed=0, callbacks=[LambdaCallback(on_epoch_end=check)])
    assert checked == [0, 1, 2]


# ---------------------------------------------------------------------------------------------- refusals
def test_compile_refuses_metrics_for_the_other_kind_of_loss_and_unknown_names():
    model = Model([Dense(5, 3)], seed=0)
    with pytest.raises(ValueError, match=r"compile: metric 'rmse' needs a regression loss \(MeanSquaredError\), "
                                         r"got SoftmaxCrossEntropy"):
        model.compile(SoftmaxCrossEntropy(), metrics=["rmse"])
    with pytest.raises(ValueError, match="compile: metric 'f1' needs a classification loss, got MeanSquaredError"):
        model.compile("mse", metrics=["f1"])
    with pytest.raises(ValueError, match="compile: unknown metric 'auc'; expected one of accuracy, balanced_accuracy, "
                                         "f1, roc_auc, mse, rmse, mae, r2"):
        model.compile(SoftmaxCrossEntropy(), metrics=["auc"])
    with pytest.raises(TypeError, match="compile: metrics must be a list of names, got 'f1'"):
        model.compile(SoftmaxCrossEntropy(), metrics="f1")
    with pytest.raises(ValueError, match=r"compile: unknown metric \['f1'\]"):
        model.compile(SoftmaxCrossEntropy(), metrics=[["f1"]])


def test_roc_auc_beyond_two_classes_is_refused_at_fit_and_evaluate():
    X, y = problem(10)
    model = Model([Dense(5, 10)], seed=0).compile(SoftmaxCrossEntropy(), metrics=["roc_auc"])
    message = r"metric 'roc_auc' needs two classes \(one binary output or two softmax outputs\), but the network " \
              r"has 10 outputs"
    with pytest.raises(ValueError, match=f"fit: {message}"):
        model.fit(X, y)  # without validation data too: the configuration is wrong either way
    with pytest.raises(ValueError, match=f"evaluate: {message}"):
        model.evaluate(X, y)


def test_multi_label_targets_keep_element_wise_accuracy_only():
    X, _ = problem(1)
    y = (X[:, :3] > 0).astype(float)
    model = Model([Dense(5, 3)], seed=0).compile(BCEWithLogits(), metrics=["accuracy", "f1"])
    with pytest.raises(ValueError, match="fit: metric 'f1' needs one class per row, but BCEWithLogits on 3 outputs "
                                         r"reads multi-label targets \(only accuracy, element-wise, applies\)"):
        model.fit(X, y, validation_data=(X, y))
    model.compile(BCEWithLogits())
    assert list(model.fit(X, y, validation_data=(X, y)).history) == ["loss", "accuracy", "val_loss", "val_accuracy",
                                                                       "lr"]


def test_binary_metrics_need_hard_targets_while_accuracy_takes_soft_ones():
    X, _ = problem(1)
    soft = np.full(len(X), 0.3)
    model = Model([Dense(5, 1), Sigmoid()], seed=0).compile(BinaryCrossEntropy(), metrics=["f1", "roc_auc"])
    with pytest.raises(ValueError, match="fit: metrics f1, roc_auc need 0/1 targets, got values strictly between "
                                         "0 and 1 in val_y"):
        model.fit(X, soft, validation_data=(X, soft))
    with pytest.raises(ValueError, match="evaluate: metrics f1, roc_auc need 0/1 targets"):
        model.evaluate(X, soft)
    with pytest.raises(ValueError, match="evaluate: metric 'f1' needs 0/1 targets, got values strictly between"):
        model.compile(BinaryCrossEntropy(), metrics=["f1"]).evaluate(X, soft)
    model.fit(X, soft)  # training targets are not read by these metrics
    model.compile(BinaryCrossEntropy())
    assert "val_accuracy" in model.fit(X, soft, validation_data=(X, soft)).history


def test_undefined_values_are_nan_not_errors():
    X, y = problem(2)
    model = Model([Dense(5, 2)], seed=0).compile(SoftmaxCrossEntropy(), metrics=["roc_auc", "f1"])
    logs = model.fit(X, y, validation_data=(X[:5], np.ones(5, dtype=int))).history
    assert math.isnan(logs["val_roc_auc"][0]) and logs["val_f1"][0] >= 0  # one class in y_val: no ROC curve
    regressor = Model([Dense(5, 1)], seed=0).compile("mse", metrics=["r2", "mae"])
    result = regressor.evaluate(X[:1], X[:1, 0])
    assert math.isnan(result["r2"]) and result["mae"] >= 0  # R² of one row is undefined, as in sklearn
