"""BatchNorm: torch.nn.BatchNorm1d's forward, backward and running statistics (stored reference, live torch when
installed), finite differences, the batch of one row, flat storage, get_weights, save and load, and bad values."""

from __future__ import annotations

import functools
import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from framework import BatchNorm, Dense, Dropout, EarlyStopping, Model, ReLU, load_model, mlp
from framework.losses import MeanSquaredError, SoftmaxCrossEntropy
from framework.optimizers import SGD, Adam

HERE = Path(__file__).parent
REFERENCE = json.loads((HERE / "batchnorm_reference.json").read_text())
RTOL, ATOL = 1e-10, 1e-12


def close(actual, expected, what: str = "") -> None:
    np.testing.assert_allclose(actual, np.array(expected), rtol=RTOL, atol=ATOL, err_msg=what)


def built(layer: BatchNorm, dtype=np.float64) -> BatchNorm:
    layer.build(np.random.default_rng(0), dtype)
    return layer


# ---------------------------------------------------------------------------------------------- torch parity
def layer_results(inputs: dict) -> dict:
    """The framework's numbers for the stored `layer` problem, laid out as the reference."""
    settings = REFERENCE["layer_settings"]
    layer = built(BatchNorm(settings["n"], momentum=settings["momentum"], eps=settings["eps"]))
    layer.params["gamma"][...], layer.params["beta"][...] = inputs["weight"], inputs["bias"]
    steps = []
    for x, G in zip(inputs["batches"], inputs["G"]):
        out = layer.forward(np.array(x), training=True)
        dx = layer.backward(np.array(G))
        steps.append({"out": out, "dx": dx, "dgamma": layer.grads["gamma"].copy(),
                      "dbeta": layer.grads["beta"].copy(), **{k: v.copy() for k, v in layer.buffers.items()}})
    return {"steps": steps, "eval_out": layer.forward(np.array(inputs["eval"]))}


def test_layer_matches_stored_torch_in_training_and_evaluation():
    actual, expected = layer_results(REFERENCE["inputs"]["layer"]), REFERENCE["layer"]
    for i, (mine, theirs) in enumerate(zip(actual["steps"], expected["steps"], strict=True)):
        for key in theirs:
            close(mine[key], theirs[key], f"batch {i}: {key}")
    close(actual["eval_out"], expected["eval_out"], "evaluation output")


def network_results(inputs: dict) -> dict:
    """The framework's numbers for the stored `network` problem: Dense -> BatchNorm -> ReLU -> Dense, SGD."""
    settings = REFERENCE["network_settings"]
    h_in, hidden, h_out = settings["sizes"]
    model = Model([Dense(h_in, hidden), BatchNorm(hidden), ReLU(), Dense(hidden, h_out)], dtype="float64")
    first, bn, _, last = model.layers
    for layer, w, b in ((first, "W1", "b1"), (last, "W2", "b2")):
        layer.params["W"][...], layer.params["b"][...] = inputs[w], inputs[b]
    model.compile(MeanSquaredError(), SGD(lr=settings["lr"], momentum=settings["momentum"]))
    for x, y in zip(inputs["X"], inputs["Y"]):
        model.train_on_batch(np.array(x), np.array(y))
    return {"W1": first.params["W"], "b1": first.params["b"], "gamma": bn.params["gamma"], "beta": bn.params["beta"],
            "W2": last.params["W"], "b2": last.params["b"], **bn.buffers,
            "eval_out": model.predict(np.array(inputs["X"][-1]))}


def test_network_training_matches_stored_torch():
    actual = network_results(REFERENCE["inputs"]["network"])
    for key, expected in REFERENCE["network"].items():
        close(actual[key], expected, key)


@functools.cache
def load_reference_script():
    spec = importlib.util.spec_from_file_location("make_batchnorm_reference", HERE / "make_batchnorm_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_matches_live_torch():
    pytest.importorskip("torch")
    live = load_reference_script().reference()
    assert live["inputs"] == REFERENCE["inputs"], "regenerate batchnorm_reference.json"
    for part in ("layer", "network"):  # the stored file is still what torch computes
        assert json.dumps(live[part]) == json.dumps(REFERENCE[part]), part


def test_float32_training_matches_live_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x, G = rng.normal(2.0, 3.0, size=(64, 16)).astype(np.float32), rng.normal(size=(64, 16)).astype(np.float32)
    layer = built(BatchNorm(16), np.float32)
    out = layer.forward(x, training=True)
    dx = layer.backward(G)
    assert out.dtype == dx.dtype == layer.buffers["running_var"].dtype == np.float32
    bn, tx = torch.nn.BatchNorm1d(16), torch.tensor(x, requires_grad=True)
    torch_out = bn(tx)
    (torch_out * torch.tensor(G)).sum().backward()
    np.testing.assert_allclose(out, torch_out.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.grads["gamma"], bn.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.grads["beta"], bn.bias.grad.numpy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(layer.buffers["running_var"], bn.running_var.numpy(), rtol=1e-5)


# ---------------------------------------------------------------------------------------------- gradients
def fd_check(layer, x, numerical_gradient, assert_gradient_close, training: bool) -> None:
    """backward against finite differences of sum(forward(x) * G), for x, gamma and beta."""
    G = np.random.default_rng(len(x)).normal(size=x.shape)

    def f() -> float:
        return float(np.sum(layer.forward(x, training=training) * G))

    layer.forward(x, training=training)
    dx = layer.backward(G.copy())
    analytic = {name: grad.copy() for name, grad in layer.grads.items()}
    assert_gradient_close(dx, numerical_gradient(f, x))
    for name, param in layer.params.items():
        assert_gradient_close(analytic[name], numerical_gradient(f, param))


@pytest.mark.parametrize("batch,width", [(2, 3), (3, 1), (7, 9), (32, 3)])
def test_training_gradients_match_finite_differences(batch, width, numerical_gradient, assert_gradient_close):
    rng = np.random.default_rng(batch * width)
    layer = built(BatchNorm(width, momentum=0.3))
    layer.params["gamma"][...] = rng.normal(1.0, 0.5, size=width)
    layer.params["beta"][...] = rng.normal(size=width)
    fd_check(layer, rng.normal(1.0, 2.0, size=(batch, width)), numerical_gradient, assert_gradient_close, True)


@pytest.mark.parametrize("training", [True, False])
def test_running_statistics_gradients_match_finite_differences(training, numerical_gradient, assert_gradient_close):
    """At inference, and for a training batch of one row, the normalisation is by the running statistics."""
    rng = np.random.default_rng(5)
    layer = built(BatchNorm(4))
    layer.buffers["running_mean"][...], layer.buffers["running_var"][...] = rng.normal(size=4), rng.uniform(0.5, 2, 4)
    layer.params["gamma"][...] = rng.normal(1.0, 0.5, size=4)
    x = rng.normal(size=(1, 4) if training else (5, 4))
    fd_check(layer, x, numerical_gradient, assert_gradient_close, training)


# ---------------------------------------------------------------------------------------------- one row
def test_a_training_batch_of_one_row_uses_and_keeps_the_running_statistics():
    rng = np.random.default_rng(0)
    layer = built(BatchNorm(3))
    layer.forward(rng.normal(size=(8, 3)), training=True)
    before = {k: v.copy() for k, v in layer.buffers.items()}
    row = rng.normal(size=(1, 3))
    out = layer.forward(row, training=True)
    assert np.isfinite(out).all()
    assert all(np.array_equal(before[k], layer.buffers[k]) for k in before)
    np.testing.assert_array_equal(out, layer.forward(row, training=False))


def batchnorm_model(seed: int = 0) -> Model:
    model = Model([Dense(4, 6), BatchNorm(6), ReLU(), Dense(6, 3)], seed=seed)
    return model.compile(SoftmaxCrossEntropy(), SGD(lr=0.1, momentum=0.9))


def test_fit_warns_when_a_batch_will_have_one_row_and_trains_finitely(blobs, all_finite):
    X, y = blobs  # 90 rows
    with pytest.warns(UserWarning, match=r"fit: the last batch of every epoch has one row \(89 rows, batch_size 8\); "
                                         r"BatchNorm normalises such a batch with its running statistics"):
        batchnorm_model().fit(X[:89], y[:89], epochs=2, batch_size=8)
    with pytest.warns(UserWarning, match="fit: every batch has one row"):
        batchnorm_model().fit(X[:5], y[:5], epochs=1, batch_size=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = batchnorm_model()
        model.fit(X, y, epochs=3, batch_size=8)  # 90 = 11 x 8 + 2
        Model([Dense(4, 3)], seed=0).compile(SoftmaxCrossEntropy()).fit(X[:89], y[:89], batch_size=8)
    assert all_finite(model) and model.evaluate(X, y)["accuracy"] > 0.9


def test_train_on_batch_of_one_row_leaves_the_statistics(blobs):
    model = batchnorm_model()
    model.fit(*blobs, epochs=1, batch_size=16)
    bn = model.layers[1]
    before = [b.copy() for b in model.buffers()]
    weights = [w.copy() for w in model.parameters()]
    model.train_on_batch(blobs[0][:1], blobs[1][:1])
    assert all(np.array_equal(a, b) for a, b in zip(before, model.buffers()))
    assert any(not np.array_equal(a, b) for a, b in zip(weights, model.parameters()))  # it still trains
    assert bn.params["gamma"].base is model.layers[0].params["W"].base


# ---------------------------------------------------------------------------------------------- in Model
def test_batchnorm_shares_the_flat_parameter_storage():
    model = batchnorm_model()
    params = model.parameters()
    assert all(p.base is params[0].base for p in params) and model.optimizer._flat is not None
    assert len(model.optimizer._groups) == 1  # one whole-buffer update for Dense and BatchNorm alike
    assert [w.shape for w in model.get_weights()] == [(4, 6), (6,), (6,), (6,), (6,), (6,), (6, 3), (3,)]
    assert model.count_params() == 4 * 6 + 6 + 2 * 6 + 6 * 3 + 3  # trainable only


def test_mlp_puts_batchnorm_before_each_hidden_activation():
    model = mlp([5, 8, 7, 2], activation="tanh", dropout=0.1, batchnorm=True, seed=0)
    assert [type(layer).__name__ for layer in model.layers] == [
        "Dense", "BatchNorm", "Tanh", "Dropout", "Dense", "BatchNorm", "Tanh", "Dropout", "Dense"]
    assert [layer.n for layer in model.layers if isinstance(layer, BatchNorm)] == [8, 7]
    assert [type(layer) for layer in mlp([5, 8, 2], seed=0).layers] == [Dense, ReLU, Dense]


def test_early_stopping_restores_the_running_statistics_of_the_best_epoch(blobs, weights_identical, record_weights):
    X, y = blobs
    model, kept = Model([Dense(4, 6), BatchNorm(6), ReLU(), Dense(6, 3)], seed=0), []
    model.compile(SoftmaxCrossEntropy(), SGD(lr=2.0))  # a large step: val_loss goes up and down
    stopper = EarlyStopping("val_loss", patience=50, restore_best_weights=True)
    history = model.fit(X, y, epochs=8, batch_size=16, validation_data=(X[:30], y[:30]),
                        callbacks=[stopper, record_weights(model, kept)])
    best = int(np.argmin(history.history["val_loss"]))
    assert best < 7 and weights_identical(model.get_weights(), kept[best])
    assert weights_identical(model.buffers(), kept[best][4:6])


def test_round_trip_keeps_the_running_statistics_and_training_continues(blobs, tmp_path, weights_identical):
    X, y = blobs
    model = Model([Dense(4, 6), BatchNorm(6, momentum=0.3, eps=1e-4), ReLU(), Dropout(0.2), Dense(6, 3)], seed=2)
    model.compile(SoftmaxCrossEntropy(), Adam(lr=0.01, amsgrad=True, clip_norm=1.0))
    model.fit(X, y, epochs=2, batch_size=16)
    model.save(tmp_path / "bn.npz")
    loaded = load_model(tmp_path / "bn.npz")
    assert loaded.layers[1].get_config() == {"n": 6, "momentum": 0.3, "eps": 1e-4}
    assert weights_identical(loaded.buffers(), model.buffers()) and np.any(model.buffers()[0] != 0)
    assert weights_identical(loaded.get_weights(), model.get_weights())
    assert loaded.predict(X).tobytes() == model.predict(X).tobytes()
    model.fit(X, y, epochs=2, batch_size=16, seed=4)
    loaded.fit(X, y, epochs=2, batch_size=16, seed=4)
    assert weights_identical(loaded.get_weights(), model.get_weights())


@pytest.mark.parametrize("make,message", [
    (lambda: BatchNorm(0), r"BatchNorm: n must be an integer >= 1, got 0"),
    (lambda: BatchNorm(4, momentum=2), r"BatchNorm: momentum must be a number >= 0 and <= 1, got 2"),
    (lambda: BatchNorm(4, momentum=None), r"BatchNorm: momentum must be a number >= 0 and <= 1, got None"),
    (lambda: BatchNorm(4, eps=0), r"BatchNorm: eps must be a number > 0, got 0"),
    (lambda: Model([Dense(4, 6), BatchNorm(5), Dense(5, 2)]),
     r"Model: Dense\(4 -> 6, init='he'\) outputs 6 features but the next layer BatchNorm\(n=5, .*\) expects 5"),
    (lambda: Model([BatchNorm(3), Dense(4, 2)]), r"Model: BatchNorm\(n=3.*outputs 3 features but the next layer "
                                                 r"Dense\(4 -> 2.*expects 4"),
    (lambda: built(BatchNorm(3)).forward(np.zeros((2, 4))), r"BatchNorm\(n=3.*expected input of shape \(batch, 3\)"),
    (lambda: BatchNorm(3).forward(np.zeros((2, 3))), r"BatchNorm\(n=3.*is not built"),
])
def test_bad_values_are_named(make, message):
    with pytest.raises((ValueError, RuntimeError), match=message):
        make()
