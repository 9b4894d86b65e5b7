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

from framework import metrics

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


def test_rmse_averages_each_outputs_root_as_sklearn():
    y_true, y_pred = np.zeros((2, 2)), np.array([[1.0, 3.0], [1.0, 3.0]])
    assert metrics.rmse(y_true, y_pred) == 2.0 == skm.root_mean_squared_error(y_true, y_pred)
    assert metrics.mse(y_true, y_pred) == 5.0
