"""Shared helpers for the framework tests: finite differences, weight comparisons and small data sets.

The helpers are handed to tests as fixtures (`def test_x(numerical_gradient): ...`) rather than imported,
so that this file never clashes with another directory's `conftest` module.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from framework import Dense, LambdaCallback, Model, ReLU, TrainingDiverged
from framework.losses import SoftmaxCrossEntropy
from framework.optimizers import SGD

FD_EPS = 1e-6  # central-difference step: truncation error ~eps**2, round-off ~1e-16/eps, both far below 1e-6
GRAD_TOL = 1e-6


def _numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = FD_EPS) -> np.ndarray:
    """Central finite differences of the scalar `f()` with respect to `x`, which is perturbed in place."""
    assert x.dtype == np.float64, "finite differences need float64"
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        f_plus = f()
        x[idx] = old - eps
        f_minus = f()
        x[idx] = old
        grad[idx] = (f_plus - f_minus) / (2 * eps)
    return grad


def _relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """Largest element-wise difference relative to the larger gradient's scale (its max magnitude)."""
    analytic, numeric = np.asarray(analytic, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    assert analytic.shape == numeric.shape, f"shape {analytic.shape} != {numeric.shape}"
    scale = max(np.abs(analytic).max(), np.abs(numeric).max(), 1e-12)
    return float(np.abs(analytic - numeric).max() / scale)


def _assert_gradient_close(analytic: np.ndarray, numeric: np.ndarray, tol: float = GRAD_TOL) -> None:
    """Fail unless the analytic gradient matches finite differences and is not trivially zero."""
    assert np.abs(numeric).max() > 1e-6, "vacuous check: the numerical gradient is zero"
    err = _relative_error(analytic, numeric)
    assert err < tol, f"relative error {err:.3g} >= {tol:g}\nanalytic:\n{analytic}\nnumeric:\n{numeric}"


def _away_from_zero(x: np.ndarray, margin: float = 0.1) -> np.ndarray:
    """Push values at least `margin` away from 0 (keeps finite differences off the ReLU kink)."""
    return np.where(x >= 0, x + margin, x - margin)


def _weights_identical(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    """True when two weight lists are bit-for-bit the same (shape, dtype and bytes)."""
    return len(a) == len(b) and all(
        x.shape == y.shape and x.dtype == y.dtype and x.tobytes() == y.tobytes() for x, y in zip(a, b)
    )


def _all_finite(model: Model) -> bool:
    """True when every parameter of `model` is finite."""
    return all(np.isfinite(p).all() for p in model.parameters())


def _record_weights(model: Model, store: list) -> LambdaCallback:
    """A callback appending a copy of the model's weights to `store` at the end of every epoch."""
    return LambdaCallback(on_epoch_end=lambda epoch, logs: store.append(model.get_weights()))


@pytest.fixture(scope="session")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """A small, separable 3-class problem: 90 rows, 4 features, fixed by a seed."""
    rng = np.random.default_rng(123)
    centers = rng.normal(scale=3.0, size=(3, 4))
    y = np.repeat(np.arange(3), 30)
    X = centers[y] + rng.normal(size=(90, 4))
    return X, y


@pytest.fixture(scope="session")
def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The README's data: sklearn digits scaled to [0, 1], stratified 80/20 split with random_state=0."""
    datasets = pytest.importorskip("sklearn.datasets")
    model_selection = pytest.importorskip("sklearn.model_selection")
    X, y = datasets.load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = model_selection.train_test_split(
        X / 16.0, y, test_size=0.2, stratify=y, random_state=0
    )
    return X_train, X_test, y_train, y_test


def _small_classifier(seed: int = 0, lr: float = 0.1, dtype: str = "float32", n_in: int = 4,
                     n_out: int = 3) -> Model:
    """A compiled Dense-ReLU-Dense softmax classifier with plain SGD."""
    model = Model([Dense(n_in, 8), ReLU(), Dense(8, n_out)], seed=seed, dtype=dtype)
    model.compile(SoftmaxCrossEntropy(), SGD(lr=lr))
    return model


@pytest.fixture(scope="session")
def numerical_gradient():
    """`numerical_gradient(f, x)`: central differences of `f()` with respect to the float64 array `x`."""
    return _numerical_gradient


@pytest.fixture(scope="session")
def assert_gradient_close():
    """`assert_gradient_close(analytic, numeric)`: relative error below 1e-6 and a non-zero gradient."""
    return _assert_gradient_close


@pytest.fixture(scope="session")
def away_from_zero():
    """`away_from_zero(x, margin=0.1)`: values moved off 0, for activations with a kink there."""
    return _away_from_zero


@pytest.fixture(scope="session")
def weights_identical():
    """`weights_identical(a, b)`: two weight lists are bit-for-bit equal."""
    return _weights_identical


@pytest.fixture(scope="session")
def all_finite():
    """`all_finite(model)`: every parameter of the model is finite."""
    return _all_finite


@pytest.fixture(scope="session")
def record_weights():
    """`record_weights(model, store)`: a LambdaCallback that appends the weights after every epoch to `store`."""
    return _record_weights


@pytest.fixture(scope="session")
def small_classifier():
    """`small_classifier(seed=0, lr=0.1, dtype="float32", n_in=4, n_out=3)`: a compiled Dense-ReLU-Dense model."""
    return _small_classifier


@pytest.fixture(scope="session")
def mid_epoch_divergence(blobs) -> dict:
    """`fit` keyword arguments (lr first) for `small_classifier` on `blobs` that diverge after the first epoch,
    in a batch other than the first: there, restoring the last finite epoch's weights really changes them.

    Searched over a few learning rates, so that faster or reordered arithmetic does not break the tests.
    """
    X, y = blobs
    for lr in (10.0, 20.0, 30.0, 50.0, 100.0, 200.0, 500.0):
        kwargs = {"epochs": 8, "batch_size": 16, "seed": 0}
        try:
            _small_classifier(lr=lr).fit(X, y, **kwargs)
        except TrainingDiverged as error:
            if error.epoch >= 1 and error.batch >= 1:
                return {"lr": lr, **kwargs}
    raise AssertionError("no learning rate made training diverge mid-epoch after the first epoch")
