"""Model behaviour: the README example, regression and binary training, reproducibility, dtypes, divergence, mlp."""

from __future__ import annotations

import math

import numpy as np
import pytest

from framework import (
    Callback,
    Dense,
    Dropout,
    Model,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    TerminateOnNaN,
    TrainingDiverged,
    load_model,
    mlp,
)
from framework.losses import BCEWithLogits, BinaryCrossEntropy, MeanSquaredError, SoftmaxCrossEntropy
from framework.optimizers import SGD, Adam, RMSProp


def sklearn_split_scaled(loader: str, stratify: bool):
    """A bundled scikit-learn data set, split 80/20 (random_state=0) and standardised on the training part."""
    datasets = pytest.importorskip("sklearn.datasets")
    model_selection = pytest.importorskip("sklearn.model_selection")
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    X, y = getattr(datasets, loader)(return_X_y=True)
    X_train, X_test, y_train, y_test = model_selection.train_test_split(
        X, y, test_size=0.2, stratify=y if stratify else None, random_state=0)
    scaler = preprocessing.StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


# ---------------------------------------------------------------------------------------------- README example
@pytest.fixture(scope="module")
def readme_run(digits_split):
    """The README example, trained once for the tests below."""
    X_train, X_test, y_train, y_test = digits_split
    model = Model([Dense(64, 32), ReLU(), Dense(32, 10)], seed=0)
    model.compile(loss=SoftmaxCrossEntropy(), optimizer=SGD(lr=0.05, momentum=0.9))
    history = model.fit(X_train, y_train, epochs=40, batch_size=32, validation_data=(X_test, y_test), seed=0)
    return model, history, digits_split


def test_readme_example_reaches_96_percent_test_accuracy(readme_run):
    model, _, (_, X_test, _, y_test) = readme_run
    assert model.evaluate(X_test, y_test)["accuracy"] >= 0.96


def test_predict_returns_class_probabilities(readme_run):
    model, _, (_, X_test, _, y_test) = readme_run
    proba = model.predict(X_test)
    assert proba.shape == (len(X_test), 10) and proba.dtype == np.float32
    assert np.all(proba >= 0) and np.all(proba <= 1)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(model.predict(X_test, batch_size=7), proba, rtol=1e-5, atol=1e-7)  # batch-independent


def test_evaluate_returns_loss_and_accuracy_consistent_with_predict(readme_run):
    model, _, (_, X_test, _, y_test) = readme_run
    result = model.evaluate(X_test, y_test)
    assert set(result) == {"loss", "accuracy"}
    assert all(isinstance(v, float) for v in result.values())
    proba = model.predict(X_test).astype(np.float64)
    assert result["accuracy"] == np.mean(proba.argmax(axis=1) == y_test)
    np.testing.assert_allclose(result["loss"], -np.mean(np.log(proba[np.arange(len(y_test)), y_test])), rtol=1e-4)


def test_history_has_one_value_per_epoch(readme_run):
    model, history, (_, X_test, _, y_test) = readme_run
    assert list(history.history) == ["loss", "accuracy", "val_loss", "val_accuracy", "lr"]
    assert all(len(values) == 40 for values in history.history.values())
    assert history.epoch == list(range(40))
    assert model.history is history
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert all(0.0 <= a <= 1.0 for a in history.history["accuracy"] + history.history["val_accuracy"])
    final = model.evaluate(X_test, y_test)
    assert history.history["val_accuracy"][-1] == final["accuracy"]
    np.testing.assert_allclose(history.history["val_loss"][-1], final["loss"], rtol=1e-12)


# ---------------------------------------------------------------------------------------------- other tasks
def test_regression_on_diabetes_loss_decreases_substantially():
    X_train, X_test, y_train, y_test = sklearn_split_scaled("load_diabetes", stratify=False)
    mean, std = y_train.mean(), y_train.std()
    y_train, y_test = (y_train - mean) / std, (y_test - mean) / std

    model = Model([Dense(10, 16), ReLU(), Dense(16, 1)], seed=0)
    model.compile(MeanSquaredError(), SGD(lr=0.01, momentum=0.9))
    assert model.metrics == []
    initial = model.evaluate(X_train, y_train)
    history = model.fit(X_train, y_train, epochs=50, batch_size=32, validation_data=(X_test, y_test), seed=0)

    assert set(initial) == {"loss"} and list(history.history) == ["loss", "val_loss", "lr"]
    assert history.history["loss"][-1] < 0.25 * initial["loss"]
    prediction = model.predict(X_test)
    assert prediction.shape == (len(X_test), 1)
    np.testing.assert_array_equal(prediction, model.forward(X_test.astype(np.float32)))  # raw values, no softmax
    test_mse = float(np.mean((prediction[:, 0] - y_test) ** 2))
    assert test_mse < np.var(y_test)  # better than predicting the mean
    np.testing.assert_allclose(model.evaluate(X_test, y_test)["loss"], test_mse, rtol=1e-5)


@pytest.mark.parametrize("fused", [False, True], ids=["sigmoid_bce", "bce_with_logits"])
def test_binary_classification_on_breast_cancer(fused):
    X_train, X_test, y_train, y_test = sklearn_split_scaled("load_breast_cancer", stratify=True)

    head = [] if fused else [Sigmoid()]
    model = Model([Dense(30, 16), ReLU(), Dense(16, 1), *head], seed=0)
    model.compile(BCEWithLogits() if fused else BinaryCrossEntropy(), Adam(lr=0.01))
    model.fit(X_train, y_train, epochs=30, batch_size=32, seed=0)

    proba = model.predict(X_test)
    assert proba.shape == (len(X_test), 1) and np.all((proba >= 0) & (proba <= 1))
    result = model.evaluate(X_test, y_test)
    assert result["accuracy"] >= 0.93
    assert result["accuracy"] == np.mean((proba[:, 0] > 0.5) == y_test)


def test_fit_with_one_full_batch_equals_train_on_batch(blobs):
    X, y = blobs
    by_fit = Model([Dense(4, 6), Tanh(), Dense(6, 3)], seed=0, dtype="float64")
    by_fit.compile(SoftmaxCrossEntropy(), SGD(lr=0.2, momentum=0.5))
    by_step = Model([Dense(4, 6), Tanh(), Dense(6, 3)], seed=0, dtype="float64")
    by_step.compile(SoftmaxCrossEntropy(), SGD(lr=0.2, momentum=0.5))

    history = by_fit.fit(X, y, epochs=3, batch_size=len(X) + 5, shuffle=False)
    losses = [by_step.train_on_batch(X, y) for _ in range(3)]
    np.testing.assert_allclose(history.history["loss"], losses, rtol=1e-14)  # (loss * n) / n may round
    np.testing.assert_allclose(np.concatenate([w.ravel() for w in by_fit.get_weights()]),
                               np.concatenate([w.ravel() for w in by_step.get_weights()]), rtol=1e-13)


def test_epoch_loss_is_the_sample_weighted_mean_of_batch_losses(blobs):
    X, y = blobs[0][:50], blobs[1][:50]
    a = Model([Dense(4, 5), ReLU(), Dense(5, 3)], seed=1, dtype="float64")
    a.compile(SoftmaxCrossEntropy(), SGD(lr=0.1))
    b = Model([Dense(4, 5), ReLU(), Dense(5, 3)], seed=1, dtype="float64")
    b.compile(SoftmaxCrossEntropy(), SGD(lr=0.1))
    history = a.fit(X, y, epochs=1, batch_size=16, shuffle=False)
    batch_losses = [(b.train_on_batch(X[i:i + 16], y[i:i + 16]), len(X[i:i + 16])) for i in range(0, 50, 16)]
    np.testing.assert_allclose(history.history["loss"][0], sum(l * n for l, n in batch_losses) / 50, rtol=1e-12)


# ---------------------------------------------------------------------------------------------- reproducibility
def dropout_model(seed):
    model = Model([Dense(4, 16), ReLU(), Dropout(0.3), Dense(16, 3)], seed=seed)
    model.compile(SoftmaxCrossEntropy(), Adam(lr=0.01))
    return model


def test_same_seeds_give_bit_identical_weights(blobs, weights_identical):
    X, y = blobs
    runs = []
    for _ in range(2):
        model = dropout_model(seed=0)
        history = model.fit(X, y, epochs=3, batch_size=8, validation_data=(X, y), seed=1)
        runs.append((model, history))
    (a, ha), (b, hb) = runs
    assert weights_identical(a.get_weights(), b.get_weights())
    assert ha.history == hb.history
    assert a.predict(X).tobytes() == b.predict(X).tobytes()


def test_fit_without_a_seed_is_derived_from_the_model_seed(blobs, weights_identical):
    X, y = blobs
    a, b = dropout_model(seed=5), dropout_model(seed=5)
    a.fit(X, y, epochs=2, batch_size=8)
    b.fit(X, y, epochs=2, batch_size=8)
    assert weights_identical(a.get_weights(), b.get_weights())


def test_different_model_seeds_give_different_weights(blobs, weights_identical):
    X, y = blobs
    a, b = dropout_model(seed=0), dropout_model(seed=1)
    assert not weights_identical(a.get_weights(), b.get_weights())
    a.fit(X, y, epochs=2, batch_size=8, seed=0)
    b.fit(X, y, epochs=2, batch_size=8, seed=0)
    assert all(not np.array_equal(wa, wb) for wa, wb in zip(a.get_weights(), b.get_weights()) if wa.any())


@pytest.mark.parametrize("dropout,shuffle,differs", [
    (0.3, True, True),    # shuffling and masks both follow the fit seed
    (0.0, True, True),    # shuffling alone
    (0.3, False, True),   # dropout masks alone
    (0.0, False, False),  # nothing random left: the fit seed cannot matter
])
def test_fit_seed_drives_shuffling_and_dropout(blobs, weights_identical, dropout, shuffle, differs):
    X, y = blobs
    weights = []
    for fit_seed in (0, 1):
        layers = [Dense(4, 16), ReLU(), *([Dropout(dropout)] if dropout else []), Dense(16, 3)]
        model = Model(layers, seed=0)
        model.compile(SoftmaxCrossEntropy(), SGD(lr=0.05))
        model.fit(X, y, epochs=2, batch_size=8, shuffle=shuffle, seed=fit_seed)
        weights.append(model.get_weights())
    assert weights_identical(*weights) is not differs


def test_global_numpy_random_state_is_never_touched(blobs, tmp_path):
    X, y = blobs
    # The legacy global API on purpose: the test is that the framework never moves this state.
    np.random.seed(1234)  # noqa: NPY002
    before = np.random.get_state()  # noqa: NPY002
    for seed in (None, 3):
        model = Model([Dense(4, 8), ReLU(), Dropout(0.5), Dense(8, 3)], seed=seed)
        model.compile(SoftmaxCrossEntropy(), Adam(lr=0.01))
        model.fit(X, y, epochs=2, batch_size=16, validation_data=(X, y))
        model.fit(X, y, epochs=1, batch_size=16, seed=seed)
        model.train_on_batch(X[:10], y[:10])
        model.predict(X)
        model.evaluate(X, y)
        model.save(tmp_path / "m.npz")
        load_model(tmp_path / "m.npz").fit(X, y, epochs=1, seed=seed)
        mlp([4, 5, 3], dropout=0.5, seed=seed)
    after = np.random.get_state()  # noqa: NPY002
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]


# ---------------------------------------------------------------------------------------------- dtypes
def test_float32_is_the_default_everywhere(blobs):
    X, y = blobs  # float64 data
    model = Model([Dense(4, 8), ReLU(), Dropout(0.2), Dense(8, 3)], seed=0)
    model.compile(SoftmaxCrossEntropy(), Adam(lr=0.01))
    assert model.dtype == np.float32
    model.fit(X, y, epochs=1, batch_size=16)
    layers = [layer for layer in model.layers if layer.params]
    assert all(a.dtype == np.float32 for layer in layers for a in [*layer.params.values(), *layer.grads.values()])
    assert all(a.dtype == np.float32 for arrays in model.optimizer.state().values() for a in arrays)
    assert model.predict(X).dtype == np.float32
    assert model.forward(X[:3].astype(np.float32), training=True).dtype == np.float32


def test_float64_models_keep_float64_and_share_the_seeded_weights():
    m64 = Model([Dense(4, 8), Tanh(), Dense(8, 3)], seed=7, dtype="float64")
    m32 = Model([Dense(4, 8), Tanh(), Dense(8, 3)], seed=7)
    assert m64.dtype == np.float64 and all(p.dtype == np.float64 for p in m64.parameters())
    assert m64.predict(np.ones((2, 4))).dtype == np.float64
    for w64, w32 in zip(m64.get_weights(), m32.get_weights()):
        np.testing.assert_array_equal(w64.astype(np.float32), w32)


# ---------------------------------------------------------------------------------------------- divergence
def test_huge_learning_rate_raises_training_diverged_naming_the_epoch(blobs, small_classifier, all_finite):
    X, y = blobs
    model = small_classifier(lr=1e3)
    with pytest.raises(TrainingDiverged, match=r"fit: loss became (nan|inf) at epoch \d+ of 8, batch \d+") as info:
        model.fit(X, y, epochs=8, batch_size=16, seed=0)
    error = info.value
    assert isinstance(error, FloatingPointError)
    assert f"epoch {error.epoch + 1} of 8" in str(error) and not math.isfinite(error.loss)
    assert all_finite(model)


def test_divergence_restores_the_last_finite_epochs_weights(blobs, small_classifier, mid_epoch_divergence,
                                                            record_weights, all_finite, weights_identical):
    X, y = blobs
    kwargs = dict(mid_epoch_divergence)
    model = small_classifier(lr=kwargs.pop("lr"))
    per_epoch = [model.get_weights()]
    with pytest.raises(TrainingDiverged) as info:
        model.fit(X, y, callbacks=[record_weights(model, per_epoch)], **kwargs)
    error = info.value
    assert error.epoch >= 1 and error.batch >= 1  # mid-epoch: the weights had moved on from the snapshot
    assert f"weights restored to the end of epoch {error.epoch}" in str(error)
    assert len(per_epoch) == error.epoch + 1
    assert all_finite(model)
    assert weights_identical(model.get_weights(), per_epoch[error.epoch])


@pytest.mark.parametrize("dtype,lr", [("float32", 1e37), ("float64", 1e307)])
def test_divergence_in_the_last_step_of_an_epoch_is_caught(dtype, lr, all_finite, weights_identical):
    """One batch per epoch: the loss is finite, but the step overflows the weights; never a silent inf model."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(16, 2)), 100 * rng.normal(size=16)
    for epochs in (1, 3):
        model = Model([Dense(2, 1)], seed=0, dtype=dtype)
        model.compile(MeanSquaredError(), SGD(lr=lr))
        initial = model.get_weights()
        with pytest.raises(TrainingDiverged, match=r"epoch 1 of"):
            model.fit(X, y, epochs=epochs, batch_size=16)
        assert all_finite(model)
        assert weights_identical(model.get_weights(), initial)


class BlowUpAt(Callback):
    """Raises the learning rate to a diverging value when epoch `epoch` begins."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            self.lr, self.model.optimizer.lr = self.model.optimizer.lr, 1e30


RESUMABLE = {
    "sgd_momentum": lambda: SGD(lr=0.05, momentum=0.9),
    "adam": lambda: Adam(lr=0.01),
    "rmsprop": lambda: RMSProp(lr=0.01, momentum=0.5),
}


@pytest.mark.parametrize("quietly", [False, True])
@pytest.mark.parametrize("name", list(RESUMABLE))
def test_training_resumes_after_a_divergence_as_if_the_epoch_never_ran(blobs, weights_identical, name, quietly):
    """Weights and optimizer state (velocity, moments, step count) both go back to the last finite epoch."""
    X, y = blobs
    k = 2
    runs = []
    for diverge in (True, False):
        model = dropout_model(seed=0)
        model.compile(SoftmaxCrossEntropy(), RESUMABLE[name]())
        if diverge:
            blow_up = BlowUpAt(k)
            callbacks = [blow_up, TerminateOnNaN()] if quietly else [blow_up]
            if quietly:
                history = model.fit(X, y, epochs=5, batch_size=16, seed=3, callbacks=callbacks)
                assert history.diverged_epoch == k
            else:
                with pytest.raises(TrainingDiverged) as info:
                    model.fit(X, y, epochs=5, batch_size=16, seed=3, callbacks=callbacks)
                assert info.value.epoch == k
                assert info.value.batch >= 1  # mid-epoch: the state had moved on before it was restored
            model.optimizer.lr = blow_up.lr
        else:
            model.fit(X, y, epochs=k, batch_size=16, seed=3)
        history = model.fit(X, y, epochs=2, batch_size=16)  # no seed: the model's own stream goes on too
        runs.append((model, history))
    (a, ha), (b, hb) = runs
    assert a.optimizer.iterations == b.optimizer.iterations
    for key in b.optimizer.state():
        assert weights_identical(a.optimizer.state()[key], b.optimizer.state()[key])
    assert weights_identical(a.get_weights(), b.get_weights())
    assert ha.history == hb.history


def test_train_on_batch_raises_on_a_non_finite_loss(small_classifier, all_finite):
    model = small_classifier(lr=1e30)
    X = np.random.default_rng(0).normal(size=(16, 4)) * 100
    y = np.arange(16) % 3
    with pytest.raises(TrainingDiverged, match="train_on_batch"):
        for _ in range(20):
            model.train_on_batch(X, y)
    assert all_finite(model)


# ---------------------------------------------------------------------------------------------- construction
def test_mlp_builds_the_expected_layers():
    model = mlp([64, 16, 10], activation="tanh", dropout=0.2, seed=0)
    assert [type(layer) for layer in model.layers] == [Dense, Tanh, Dropout, Dense]
    first, _, dropout, last = model.layers
    assert (first.n_in, first.n_out, first.init) == (64, 16, "xavier")  # xavier for tanh
    assert dropout.rate == 0.2
    assert (last.n_in, last.n_out) == (16, 10)
    assert model.count_params() == 64 * 16 + 16 + 16 * 10 + 10
    assert model.n_in == 64 and model.n_out == 10


def test_mlp_defaults_and_output_activation():
    model = mlp([4, 5, 6, 3], output_activation="softmax")
    assert [type(layer) for layer in model.layers] == [Dense, ReLU, Dense, ReLU, Dense, Softmax]
    assert {layer.init for layer in model.layers if isinstance(layer, Dense)} == {"he"}
    assert [type(layer) for layer in mlp([4, 2]).layers] == [Dense]
    assert mlp([3, 4, 2], dtype="float64").dtype == np.float64


def test_summary_and_repr_show_layer_sizes_and_parameter_counts():
    model = mlp([64, 16, 10], activation="tanh", dropout=0.2, seed=0)
    summary = model.summary()
    for text in ("Dense(64 -> 16", "Dense(16 -> 10", "Tanh", "Dropout(rate=0.2)", "(batch, 16)", "(batch, 10)",
                 "1,040", "170", "Total params: 1,210"):
        assert text in summary, f"{text!r} missing from:\n{summary}"
    text = repr(model)
    assert "64 -> 16" in text and "16 -> 10" in text and "params=1,210" in text
    model.compile(SoftmaxCrossEntropy(), SGD(lr=0.05, momentum=0.9))
    assert "SGD(lr=0.05, momentum=0.9" in model.summary() and "SoftmaxCrossEntropy" in model.summary()
