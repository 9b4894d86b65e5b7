"""Callbacks: EarlyStopping (with best-weight restore), LambdaCallback, TerminateOnNaN, the hook order."""

from __future__ import annotations

import math

import numpy as np
import pytest

from framework import Callback, Dense, EarlyStopping, LambdaCallback, Model, ReLU, TerminateOnNaN
from framework.losses import MeanSquaredError, SoftmaxCrossEntropy
from framework.optimizers import SGD, Adam


def injector(key: str, values: list[float]) -> LambdaCallback:
    """Puts a scripted value into each epoch's logs (placed before EarlyStopping, which reads it)."""
    return LambdaCallback(on_epoch_end=lambda epoch, logs: logs.update({key: values[epoch]}))


# ---------------------------------------------------------------------------------------------- EarlyStopping
@pytest.mark.parametrize("patience", [1, 3])
def test_early_stopping_stops_patience_epochs_after_the_best_and_restores_it(
        blobs, small_classifier, record_weights, weights_identical, patience):
    X, y = blobs
    model = small_classifier(lr=0.05)
    scores = [5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 3.05, 2.0, 1.0, 0.5]  # best at epoch 2, better again only at 7
    per_epoch: list = []
    stopper = EarlyStopping("score", patience=patience, restore_best_weights=True)
    history = model.fit(X, y, epochs=10, batch_size=16, seed=0,
                        callbacks=[injector("score", scores), stopper, record_weights(model, per_epoch)])

    assert stopper.best_epoch == 2 and stopper.best == 3.0
    assert stopper.stopped_epoch == history.stopped_epoch == 2 + patience  # `patience` epochs without improvement
    assert history.epoch == list(range(3 + patience)) and len(per_epoch) == 3 + patience
    assert weights_identical(model.get_weights(), per_epoch[2])
    assert not weights_identical(per_epoch[2], per_epoch[-1]), "restoring must have changed something"


def test_without_restore_the_last_epoch_weights_stay(blobs, small_classifier, record_weights, weights_identical):
    X, y = blobs
    model = small_classifier(lr=0.05)
    per_epoch: list = []
    stopper = EarlyStopping("score", patience=1)
    model.fit(X, y, epochs=10, callbacks=[injector("score", [3.0, 2.0, 2.5, 1.0] + [0.0] * 6), stopper,
                                          record_weights(model, per_epoch)])
    assert stopper.stopped_epoch == 2 and len(per_epoch) == 3
    assert weights_identical(model.get_weights(), per_epoch[-1])


def test_min_delta_and_mode(blobs, small_classifier):
    X, y = blobs
    # Improvements smaller than min_delta do not count: best stays at epoch 0.
    model = small_classifier()
    stopper = EarlyStopping("score", patience=2, min_delta=0.1)
    history = model.fit(X, y, epochs=6, callbacks=[injector("score", [1.0, 0.95, 0.92, 0.5, 0.4, 0.3]), stopper])
    assert stopper.best_epoch == 0 and len(history.epoch) == 3

    # "acc" in the name means higher is better; mode="min" overrides it.
    assert EarlyStopping("val_accuracy").mode == "max" and EarlyStopping("val_loss").mode == "min"
    climbing = [0.5, 0.6, 0.7, 0.65, 0.6, 0.55]
    for mode, best_epoch, epochs_run in (("auto", 2, 4), ("min", 0, 2)):
        stopper = EarlyStopping("my_acc", patience=1, mode=mode)
        history = small_classifier().fit(X, y, epochs=6, callbacks=[injector("my_acc", climbing), stopper])
        assert stopper.best_epoch == best_epoch and len(history.epoch) == epochs_run


NAN = float("nan")


# Keras 3 (keras/src/callbacks/early_stopping.py): best starts as None, so the first value is always an
# improvement, even a NaN, which no later value beats (x < nan is False); wait counts epochs since the
# best, and stopping needs wait >= patience and epoch > 0. Expected: (stopped epoch, best epoch, best).
KERAS_CASES = {
    "nan first, patience 0": ([NAN, 1.0, 0.5, 0.2, 0.1, 0.0], 0, (1, 0, NAN)),
    "nan first, patience 2": ([NAN, 1.0, 0.5, 0.2, 0.1, 0.0], 2, (2, 0, NAN)),
    "nan later, patience 0": ([1.0, NAN, 0.5, 0.2, 0.1, 0.0], 0, (1, 0, 1.0)),
    "nan later, patience 2": ([1.0, NAN, 0.5, NAN, NAN, 0.0], 2, (4, 2, 0.5)),
}


@pytest.mark.parametrize("case", list(KERAS_CASES))
def test_early_stopping_with_nan_values_behaves_as_keras_3(blobs, small_classifier, record_weights,
                                                          weights_identical, case):
    X, y = blobs
    scores, patience, (stopped, best_epoch, best) = KERAS_CASES[case]
    model = small_classifier(lr=0.05)
    per_epoch: list = []
    stopper = EarlyStopping("score", patience=patience, restore_best_weights=True)
    history = model.fit(X, y, epochs=len(scores), batch_size=16, seed=0,
                        callbacks=[injector("score", scores), stopper, record_weights(model, per_epoch)])

    assert stopper.stopped_epoch == history.stopped_epoch == stopped
    assert stopper.best_epoch == best_epoch
    assert stopper.best == best or (np.isnan(best) and np.isnan(stopper.best))
    assert len(history.epoch) == stopped + 1
    assert weights_identical(model.get_weights(), per_epoch[best_epoch])  # restore_best_weights still works


def test_early_stopping_never_stops_at_the_first_epoch(blobs, small_classifier):
    """Even with patience 0 and a first value that could not improve on anything (+inf)."""
    X, y = blobs
    for first in (math.inf, NAN):
        stopper = EarlyStopping("score", patience=0)
        history = small_classifier().fit(X, y, epochs=2, callbacks=[injector("score", [first, first]), stopper])
        assert stopper.best_epoch == 0 and history.stopped_epoch == 1


def test_early_stopping_on_real_validation_loss(record_weights, weights_identical):
    """Random labels: the validation loss bottoms out early and then rises as the model memorises."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 5)), rng.integers(0, 3, size=60)
    X_val, y_val = rng.normal(size=(60, 5)), rng.integers(0, 3, size=60)
    model = Model([Dense(5, 64), ReLU(), Dense(64, 3)], seed=0)
    model.compile(SoftmaxCrossEntropy(), Adam(lr=0.02))
    per_epoch: list = []
    stopper = EarlyStopping("val_loss", patience=3, restore_best_weights=True)
    history = model.fit(X, y, epochs=100, batch_size=16, validation_data=(X_val, y_val), seed=0,
                        callbacks=[stopper, record_weights(model, per_epoch)])

    val_loss = history.history["val_loss"]
    assert len(val_loss) < 100, "should have stopped early"
    assert stopper.best_epoch == int(np.argmin(val_loss)) and stopper.best == min(val_loss)
    assert stopper.stopped_epoch == stopper.best_epoch + 3 == len(val_loss) - 1
    assert weights_identical(model.get_weights(), per_epoch[stopper.best_epoch])
    np.testing.assert_allclose(model.evaluate(X_val, y_val)["loss"], min(val_loss), rtol=1e-12)


def test_missing_monitor_is_a_clear_error(blobs, small_classifier):
    X, y = blobs
    with pytest.raises(ValueError, match="EarlyStopping: monitor 'val_loss' is not logged; available: loss, accuracy"):
        small_classifier().fit(X, y, epochs=2, callbacks=[EarlyStopping("val_loss")])
    with pytest.raises(ValueError, match="monitor 'val_acc' is not logged; available: .*val_accuracy"):
        small_classifier().fit(X, y, epochs=2, validation_data=(X, y), callbacks=[EarlyStopping("val_acc")])


# ---------------------------------------------------------------------------------------------- LambdaCallback
def test_lambda_callback_receives_every_epochs_logs(blobs, small_classifier):
    X, y = blobs
    seen, ended = [], []
    callback = LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append((epoch, dict(logs))),
                              on_train_end=lambda logs: ended.append(True))
    history = small_classifier().fit(X, y, epochs=4, batch_size=16, validation_data=(X, y), callbacks=[callback])

    assert [epoch for epoch, _ in seen] == [0, 1, 2, 3] and ended == [True]
    for key, values in history.history.items():
        assert [logs[key] for _, logs in seen] == values
    assert list(seen[0][1]) == ["loss", "accuracy", "val_loss", "val_accuracy", "lr"]


def test_callback_hooks_run_in_order_with_the_model_set(blobs, small_classifier):
    X, y = blobs
    model = small_classifier()
    calls = []

    class Spy(Callback):
        def on_train_begin(self, logs=None):
            calls.append(("train_begin", self.model is model))

        def on_epoch_begin(self, epoch, logs=None):
            calls.append(("epoch_begin", epoch))

        def on_epoch_end(self, epoch, logs):
            calls.append(("epoch_end", epoch))

        def on_train_end(self, logs=None):
            calls.append(("train_end", None))

    model.fit(X, y, epochs=2, callbacks=[Spy()])
    assert calls == [("train_begin", True), ("epoch_begin", 0), ("epoch_end", 0), ("epoch_begin", 1),
                     ("epoch_end", 1), ("train_end", None)]


# ---------------------------------------------------------------------------------------------- TerminateOnNaN
def test_terminate_on_nan_stops_quietly_with_the_last_finite_weights(blobs, small_classifier, mid_epoch_divergence,
                                                                     record_weights, all_finite, weights_identical):
    X, y = blobs
    kwargs = dict(mid_epoch_divergence)
    model = small_classifier(lr=kwargs.pop("lr"))
    per_epoch = [model.get_weights()]
    ended = []
    history = model.fit(X, y, callbacks=[TerminateOnNaN(), record_weights(model, per_epoch),
                                         LambdaCallback(on_train_end=lambda logs: ended.append(True))], **kwargs)

    assert history.diverged_epoch is not None and history.diverged_epoch >= 1
    assert history.epoch == list(range(history.diverged_epoch))  # the diverged epoch is not logged
    assert all(np.isfinite(history.history["loss"]))
    assert all_finite(model) and weights_identical(model.get_weights(), per_epoch[history.diverged_epoch])
    assert ended == [True]


def test_terminate_on_nan_also_catches_an_overflow_in_the_last_step(all_finite, weights_identical):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(16, 2)), 100 * rng.normal(size=16)
    model = Model([Dense(2, 1)], seed=0, dtype="float64")
    model.compile(MeanSquaredError(), SGD(lr=1e307))
    initial = model.get_weights()
    history = model.fit(X, y, epochs=3, batch_size=16, callbacks=[TerminateOnNaN()])
    assert history.diverged_epoch == 0 and history.history == {}
    assert all_finite(model) and weights_identical(model.get_weights(), initial)


def test_no_divergence_means_no_diverged_epoch(blobs, small_classifier):
    X, y = blobs
    history = small_classifier().fit(X, y, epochs=2, callbacks=[TerminateOnNaN()])
    assert history.diverged_epoch is None and history.stopped_epoch is None and len(history.epoch) == 2
