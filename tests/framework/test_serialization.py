"""save / load_model: exact round trips (weights, optimizer state, metadata) and refusal of anything else."""

from __future__ import annotations

import json
import pickle
import zipfile

import numpy as np
import pytest

from framework import Dense, Dropout, LeakyReLU, Model, ReLU, Sigmoid, Softmax, Tanh, load_model
from framework.losses import (
    BCEWithLogits,
    BinaryCrossEntropy,
    CategoricalCrossEntropy,
    MeanSquaredError,
    SoftmaxCrossEntropy,
)
from framework.optimizers import SGD, Adam, AdamW, RMSProp
from tests.model_files import config_of, rewrite

OPTIMIZERS = {
    "sgd": lambda: SGD(lr=0.05),
    "sgd_nesterov": lambda: SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda: Adam(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-7, weight_decay=1e-4),
    "rmsprop_momentum": lambda: RMSProp(lr=0.01, rho=0.9, momentum=0.5),
    "sgd_dampening_clip_value": lambda: SGD(lr=0.05, momentum=0.9, dampening=0.5, clip_value=0.1),
    "adam_amsgrad_clip_norm": lambda: Adam(lr=0.01, amsgrad=True, clip_norm=0.5),
    "adamw_amsgrad_both_clips": lambda: AdamW(lr=0.01, weight_decay=0.1, amsgrad=True, clip_norm=1.0, clip_value=0.3),
    "rmsprop_centered_momentum": lambda: RMSProp(lr=0.01, rho=0.9, momentum=0.5, centered=True, clip_norm=2.0),
}


def trained(blobs, optimizer, dtype="float32", seed=0):
    """A model with every layer type, trained two epochs so that the optimizer state is non-trivial."""
    X, y = blobs
    model = Model([Dense(4, 8), LeakyReLU(0.05), Dropout(0.25), Dense(8, 6), Tanh(), Dense(6, 3)],
                  seed=seed, dtype=dtype)
    model.compile(SoftmaxCrossEntropy(), optimizer)
    model.fit(X, y, epochs=2, batch_size=16, seed=1)
    model.metadata = {"scaler": {"min": [0.0, 1.5], "scale": [2.0, 0.5]}, "classes": ["a", "b", "c"], "note": "é"}
    return model


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_round_trip_restores_everything(blobs, tmp_path, weights_identical, name, dtype):
    X, _ = blobs
    model = trained(blobs, OPTIMIZERS[name](), dtype)
    model.save(tmp_path / "model.npz")
    loaded = load_model(tmp_path / "model.npz")

    assert repr(loaded) == repr(model)
    assert [layer.get_config() for layer in loaded.layers] == [layer.get_config() for layer in model.layers]
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert loaded.dtype == model.dtype == np.dtype(dtype)
    assert loaded.seed == model.seed and loaded.metrics == model.metrics == ["accuracy"]
    assert loaded.metadata == model.metadata
    assert type(loaded.loss) is SoftmaxCrossEntropy
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations > 0
    assert weights_identical(loaded.get_weights(), model.get_weights())
    saved_state, loaded_state = model.optimizer.state(), loaded.optimizer.state()
    assert saved_state.keys() == loaded_state.keys()
    for key in saved_state:
        assert weights_identical(loaded_state[key], saved_state[key])
    assert loaded.predict(X).tobytes() == model.predict(X).tobytes()
    assert loaded.evaluate(*blobs) == model.evaluate(*blobs)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_training_continues_identically_after_load(blobs, tmp_path, weights_identical, name):
    X, y = blobs
    model = trained(blobs, OPTIMIZERS[name]())
    model.save(tmp_path / "model.npz")
    loaded = load_model(tmp_path / "model.npz")

    h1 = model.fit(X, y, epochs=2, batch_size=16, seed=7)
    h2 = loaded.fit(X, y, epochs=2, batch_size=16, seed=7)
    assert weights_identical(loaded.get_weights(), model.get_weights())
    assert h1.history == h2.history
    loaded.train_on_batch(X[:5], y[:5])
    model.train_on_batch(X[:5], y[:5])
    assert weights_identical(loaded.get_weights(), model.get_weights())


@pytest.mark.parametrize("seed", [0, None])
def test_fit_without_a_seed_continues_the_models_random_stream_after_load(blobs, tmp_path, weights_identical, seed):
    """Shuffles and dropout masks of a seedless fit come from the model's stream: the file keeps its place."""
    X, y = blobs
    model = trained(blobs, Adam(lr=0.01), seed=seed)
    model.fit(X, y, epochs=1, batch_size=16)  # a seedless fit moves the stream on
    model.save(tmp_path / "model.npz")
    loaded = load_model(tmp_path / "model.npz")
    runs = [m.fit(X, y, epochs=2, batch_size=16) for m in (model, loaded)]
    assert runs[0].history == runs[1].history
    assert weights_identical(loaded.get_weights(), model.get_weights())


def test_an_old_file_without_the_random_stream_still_loads(blobs, tmp_path, weights_identical):
    """Written before fit_seeds was saved: the stream starts from the model's seed, as it did then."""
    X, y = blobs
    model = trained(blobs, SGD(lr=0.05), seed=3)
    model.save(tmp_path / "model.npz")
    config = config_of(tmp_path / "model.npz")
    del config["fit_seeds"]
    old = load_model(rewrite(tmp_path / "model.npz", tmp_path, "old.npz", config=config))
    fresh = trained(blobs, SGD(lr=0.05), seed=3)  # a model whose stream was never drawn from
    fresh.set_weights(old.get_weights())
    fresh.optimizer.load_state(old.optimizer.state(), old.optimizer.iterations)
    runs = [m.fit(X, y, epochs=1, batch_size=16) for m in (old, fresh)]
    assert runs[0].history == runs[1].history and weights_identical(old.get_weights(), fresh.get_weights())


def test_a_fresh_optimizer_would_not_continue_identically(blobs, tmp_path, weights_identical):
    """The check above is meaningful: dropping the saved Adam state changes the continuation."""
    X, y = blobs
    model = trained(blobs, Adam(lr=0.01))
    model.save(tmp_path / "model.npz")
    restarted = load_model(tmp_path / "model.npz")
    restarted.compile(SoftmaxCrossEntropy(), Adam(lr=0.01))  # same weights, state reset
    model.fit(X, y, epochs=1, batch_size=16, seed=7)
    restarted.fit(X, y, epochs=1, batch_size=16, seed=7)
    assert not weights_identical(restarted.get_weights(), model.get_weights())


@pytest.mark.parametrize("layers,loss,n_out", [
    ([Dense(4, 1), Sigmoid()], BinaryCrossEntropy(eps=1e-5), 1),
    ([Dense(4, 3), Softmax()], CategoricalCrossEntropy(eps=1e-6), 3),
    ([Dense(4, 2)], MeanSquaredError(), 2),
    ([Dense(4, 1)], BCEWithLogits(), 1),
])
def test_round_trip_keeps_each_loss_and_its_config(tmp_path, layers, loss, n_out):
    model = Model(layers, seed=4).compile(loss, "rmsprop")
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert type(loaded.loss) is type(loss) and loaded.loss.get_config() == loss.get_config()
    assert loaded.metrics == model.metrics
    X = np.random.default_rng(0).normal(size=(5, 4))
    assert loaded.predict(X).tobytes() == model.predict(X).tobytes()


@pytest.mark.parametrize("layers,loss,names", [
    ([Dense(4, 2)], SoftmaxCrossEntropy(), ["roc_auc", "accuracy", "f1", "balanced_accuracy"]),
    ([Dense(4, 2)], MeanSquaredError(), ["r2", "mae", "rmse", "mse"]),
])
def test_round_trip_keeps_the_compiled_metrics_and_their_order(tmp_path, layers, loss, names):
    model = Model(layers, seed=4).compile(loss, "adam", metrics=names)
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.metrics == model.metrics == names
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 4)), rng.integers(0, 2, size=20)
    assert list(loaded.evaluate(X, y).items()) == list(model.evaluate(X, y).items())


def test_an_uncompiled_model_loads_uncompiled(tmp_path):
    model = Model([Dense(3, 2), ReLU()], seed=None)
    model.metadata["why"] = "inference only"
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.loss is None and loaded.optimizer is None
    assert loaded.metadata == {"why": "inference only"}
    assert np.array_equal(loaded.predict(np.ones((2, 3))), model.predict(np.ones((2, 3))))


def test_save_refuses_metadata_that_is_not_json_and_keeps_the_old_file(tmp_path, small_classifier):
    model = small_classifier()
    path = tmp_path / "m.npz"
    model.save(path)
    model.metadata = {"bad": object()}
    with pytest.raises(ValueError, match="save: model.metadata must hold JSON-serialisable, finite values"):
        model.save(path)
    model.metadata = {"bad": float("nan")}
    with pytest.raises(ValueError, match="save: model.metadata must hold JSON-serialisable, finite values"):
        model.save(path)
    assert load_model(path).metadata == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]  # no temporary file left behind


def test_saved_file_is_plain_npz_with_a_json_config(tmp_path, small_classifier):
    model = small_classifier()
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:  # readable without pickle
        config = json.loads(str(data["__config__"]))
        assert {"param/0", "param/1", "param/2", "param/3"} <= set(data.files)
    assert config["format"] == "numpy-mlp-model" and config["dtype"] == "float32"
    assert [spec["class"] for spec in config["layers"]] == ["Dense", "ReLU", "Dense"]


# ---------------------------------------------------------------------------------------------- not a model
NOT_A_MODEL = "is not a model file"


def good_file(tmp_path, small_classifier):
    path = tmp_path / "good.npz"
    small_classifier().compile(SoftmaxCrossEntropy(), Adam()).save(path)
    return path


def test_text_file_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a model\n")
    with pytest.raises(ValueError, match=f"load_model: .*notes.txt {NOT_A_MODEL}"):
        load_model(path)


def test_plain_npy_is_refused(tmp_path):
    path = tmp_path / "weights.npy"
    np.save(path, np.arange(6.0))
    with pytest.raises(ValueError, match=f"load_model: .*weights.npy {NOT_A_MODEL}"):
        load_model(path)


def test_npz_without_config_is_refused(tmp_path):
    path = tmp_path / "arrays.npz"
    np.savez(path, a=np.arange(3), b=np.ones((2, 2)))
    with pytest.raises(ValueError, match=f"{NOT_A_MODEL}.*no model config inside"):
        load_model(path)


@pytest.mark.parametrize("cut", [0, 10, 0.5, -30])
def test_truncated_file_is_refused(tmp_path, small_classifier, cut):
    raw = good_file(tmp_path, small_classifier).read_bytes()
    path = tmp_path / "truncated.npz"
    path.write_bytes(raw[:int(cut * len(raw)) if isinstance(cut, float) else cut])
    with pytest.raises(ValueError, match=f"load_model: .*truncated.npz {NOT_A_MODEL}"):
        load_model(path)


def test_damaged_bytes_are_refused(tmp_path, small_classifier):
    raw = bytearray(good_file(tmp_path, small_classifier).read_bytes())
    start = raw.index(b"param/0.npy") + 200  # inside the stored weights: the zip's CRC no longer matches
    raw[start:start + 16] = b"\xff" * 16
    path = tmp_path / "damaged.npz"
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=f"load_model: .*damaged.npz {NOT_A_MODEL}"):
        load_model(path)


def test_missing_file_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="load_model: no such file .*absent.npz"):
        load_model(tmp_path / "absent.npz")


def test_object_array_npz_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, __config__=np.array([{"format": "numpy-mlp-model"}], dtype=object))
    with pytest.raises(ValueError, match=f"{NOT_A_MODEL}.*allow_pickle=False"):
        load_model(path)


class _Exploit:
    """Unpickling this would create a marker file: proof of code execution."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("container", ["pickle", "npz_member"])
def test_a_pickle_never_executes(tmp_path, container):
    marker = tmp_path / "executed"
    path = tmp_path / "evil.npz"
    if container == "pickle":
        path.write_bytes(pickle.dumps(_Exploit(marker)))
    else:
        np.savez(path, __config__=np.array([_Exploit(marker)], dtype=object), **{"param/0": np.ones(2)})
    with pytest.raises(ValueError, match=NOT_A_MODEL):
        load_model(path)
    assert not marker.exists()


@pytest.mark.parametrize("edit,message", [
    (lambda c: "{not json", "no model config inside"),
    (lambda c: "[1, 2]", "unknown format"),
    (lambda c: {**c, "format": "keras"}, "unknown format"),
    (lambda c: {**c, "version": 99}, "has format version 99; this version reads 1"),
    (lambda c: {**c, "dtype": "int8"}, r"damaged config \(dtype or layers missing\)"),
    (lambda c: {**c, "layers": [{"class": "os.system", "config": {"command": "true"}}]},
     r"invalid layer entry .*os.system.*; expected one of Dense"),
    (lambda c: {**c, "layers": [{"class": ["Dense"], "config": {}}]}, "invalid layer entry"),
    (lambda c: {**c, "layers": [{"class": "Dense", "config": {"n_in": 4, "n_out": 8, "bias": 1}}, *c["layers"][1:]]},
     "invalid layer configuration"),
    (lambda c: {**c, "loss": {"class": "Hinge", "config": {}}}, "invalid loss entry"),
    (lambda c: {**c, "optimizer": {**c["optimizer"], "class": "Adagrad"}}, "invalid optimizer entry"),
    (lambda c: {**c, "optimizer": {**c["optimizer"], "iterations": None}}, "iterations"),
    (lambda c: {**c, "optimizer": {**c["optimizer"], "iterations": "many"}}, "iterations"),
    (lambda c: {**c, "fit_seeds": {**c["fit_seeds"], "entropy": -1}}, "fit_seeds"),
    (lambda c: {**c, "fit_seeds": {**c["fit_seeds"], "spawn_key": "3"}}, "fit_seeds"),
    (lambda c: {**c, "fit_seeds": None}, "fit_seeds"),
    (lambda c: {**c, "metrics": ["auc"]}, "edited.npz has a damaged config: compile: unknown metric 'auc'"),
    (lambda c: {**c, "metrics": ["rmse"]}, "damaged config: compile: metric 'rmse' needs a regression loss"),
    (lambda c: {**c, "metrics": [["f1"]]}, r"damaged config: compile: unknown metric \['f1'\]"),
])
def test_damaged_config_is_refused(tmp_path, small_classifier, edit, message):
    good = good_file(tmp_path, small_classifier)
    path = rewrite(good, tmp_path, "edited.npz", config=edit(config_of(good)))
    with pytest.raises(ValueError, match=message):
        load_model(path)


@pytest.mark.parametrize("drop,replace,message", [
    (("param/1",), None, "its weight arrays do not match its layers"),
    ((), {"param/0": np.zeros((2, 2))}, "its weight arrays do not match its layers"),
    (("optimizer/m/0",), None, "optimizer state is incomplete"),
    ((), {"optimizer/v/2": np.zeros(7)}, "optimizer state"),
])
def test_damaged_arrays_are_refused(tmp_path, small_classifier, drop, replace, message):
    path = rewrite(good_file(tmp_path, small_classifier), tmp_path, "edited.npz", drop=drop, replace=replace)
    with pytest.raises(ValueError, match=f"load_model: .*edited.npz is damaged: {message}"):
        load_model(path)


def test_rewrite_helper_keeps_a_loadable_file(tmp_path, small_classifier):
    """The damage tests above start from a file that loads fine when left alone."""
    path = rewrite(good_file(tmp_path, small_classifier), tmp_path, "same.npz")
    assert isinstance(load_model(path), Model)
    with zipfile.ZipFile(path) as archive:
        assert "__config__.npy" in archive.namelist()


def test_a_save_that_fails_midway_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    from framework import Dense, Model, serialization

    model = Model([Dense(3, 2)], seed=0).compile("softmax_cross_entropy")
    path = tmp_path / "model.npz"
    model.save(path)
    before = path.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(serialization.np, "savez", full_disk)
    with pytest.raises(OSError, match="No space left"):
        model.save(path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_label_smoothing_and_the_new_optimizer_options_are_saved(blobs, tmp_path):
    X, y = blobs
    model = Model([Dense(4, 5), ReLU(), Dense(5, 3)], seed=0)
    model.compile(SoftmaxCrossEntropy(label_smoothing=0.15), AdamW(lr=0.02, amsgrad=True, clip_norm=0.5))
    model.fit(X, y, epochs=1, batch_size=16)
    model.save(tmp_path / "model.npz")
    loaded = load_model(tmp_path / "model.npz")
    assert loaded.loss.get_config() == {"label_smoothing": 0.15} and repr(loaded.loss) == repr(model.loss)
    assert loaded.optimizer.get_config() == {"lr": 0.02, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "amsgrad": True,
                                             "weight_decay": 0.01, "clip_norm": 0.5, "clip_value": None}
    assert set(loaded.optimizer.state()) == {"m", "v", "v_max"}
    assert loaded.evaluate(X, y) == model.evaluate(X, y)


def test_files_written_before_the_new_options_load_with_their_defaults(blobs, tmp_path):
    """A config without label_smoothing, amsgrad, clip_norm... (as older saves wrote them) still loads."""
    model = trained(blobs, Adam(lr=0.01))
    model.save(tmp_path / "model.npz")
    config = config_of(tmp_path / "model.npz")
    config["loss"]["config"] = {}
    for key in ("amsgrad", "clip_norm", "clip_value"):
        del config["optimizer"]["config"][key]
    loaded = load_model(rewrite(tmp_path / "model.npz", tmp_path, "old.npz", config=config))
    assert loaded.loss.label_smoothing == 0.0 and not loaded.optimizer.amsgrad and loaded.optimizer.clip_norm is None
    assert loaded.evaluate(*blobs) == model.evaluate(*blobs)
