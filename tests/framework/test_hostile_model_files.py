"""load_model on hostile files: sizes checked before anything is allocated, caps on the config, finite weights."""

from __future__ import annotations

import json
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

from framework import BatchNorm, Dense, Dropout, Model, ReLU, load_model
from framework.losses import SoftmaxCrossEntropy
from framework.optimizers import Adam
from framework.serialization import _LAYERS, MAX_CONFIG_CHARS, _buffer_shapes, _param_shapes
from tests.model_files import arrays_of, config_of, model_members, npy_bytes, rewrite, write_zip

MiB = 2**20


@pytest.fixture
def good(tmp_path, small_classifier):
    path = tmp_path / "good.npz"
    small_classifier().compile(SoftmaxCrossEntropy(), Adam()).save(path)
    return path


def refused_within(path, match: str, budget: int) -> None:
    """load_model(path) raises a ValueError matching `match`, having allocated at most `budget` bytes on the way."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=match) as error:
            load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < budget, f"peak {peak / MiB:.1f} MiB before refusing: {error.value}"
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def inference_config(good, layers: list[dict]) -> dict:
    """The config of `good` with other layers and no loss or optimizer (so no state arrays are needed)."""
    return {**config_of(good), "layers": layers, "loss": None, "optimizer": None}


def dense(n_in: int, n_out: int) -> dict:
    return {"class": "Dense", "config": {"n_in": n_in, "n_out": n_out, "init": "he"}}


def test_absurd_layer_sizes_are_refused_before_anything_is_allocated(good, tmp_path):
    path = rewrite(good, tmp_path, "huge.npz", config=inference_config(good, [dense(10**6, 10**6)]))
    refused_within(path, r"declares 1,000,001,000,000 float32 parameters; refusing more than 1 GiB", MiB)


def test_layer_sizes_that_do_not_match_the_arrays_are_refused_before_the_model_is_built(good, tmp_path):
    """64 MiB of declared weights with tiny arrays stored: the headers say so before Model allocates them."""
    path = rewrite(good, tmp_path, "mismatch.npz", config=inference_config(good, [dense(4096, 4096)]))
    refused_within(path, r"do not match its layers: param/0 \(W of layer 0 Dense\(4096 -> 4096.*holds \(4, 8\)",
                   8 * MiB)


def test_a_header_declaring_more_than_its_bytes_is_refused_before_reading(good, tmp_path):
    config = inference_config(good, [dense(4096, 2048)])
    members = model_members(config, {"param/1": np.zeros(2048, dtype=np.float32)})
    members["param/0.npy"] = npy_bytes(header={"descr": "<f4", "fortran_order": False, "shape": (4096, 2048)},
                                       data=b"\x00" * 16)
    path = write_zip(tmp_path / "short.npz", members)
    refused_within(path, r"param/0 declares shape \(4096, 2048\) of float32 \(33,554,432 bytes\) but holds 16",
                   4 * MiB)


def _set_central_size(raw: bytes, name: bytes, size: int) -> bytes:
    """The zip `raw` with the uncompressed size of member `name` in its central directory set to `size`."""
    start = raw.index(b"PK\x01\x02")  # the first central directory entry; its name starts at byte 46
    while raw[start + 46:start + 46 + len(name)] != name:
        start = raw.index(b"PK\x01\x02", start + 4)
    return raw[:start + 24] + struct.pack("<I", size) + raw[start + 28:]


def test_a_member_declaring_more_than_deflate_can_give_is_a_zip_bomb(good, tmp_path):
    members = model_members(config_of(good), {k: v for k, v in arrays_of(good).items() if k != "__config__"})
    raw = write_zip(tmp_path / "deflated.npz", members, zipfile.ZIP_DEFLATED).read_bytes()
    assert isinstance(load_model(tmp_path / "deflated.npz"), Model)  # deflated members are fine
    (tmp_path / "bomb.npz").write_bytes(_set_central_size(raw, b"param/0.npy", 2**31))
    refused_within(tmp_path / "bomb.npz", r"param/0 declares 2,147,483,648 bytes, .*\(a zip bomb or damage\)", MiB)


def test_np_savez_compressed_files_load_unchanged(good, tmp_path, weights_identical):
    np.savez_compressed(tmp_path / "small.npz", **arrays_of(good))
    assert weights_identical(load_model(tmp_path / "small.npz").get_weights(), load_model(good).get_weights())


def test_members_in_other_compression_methods_are_refused(good, tmp_path):
    members = model_members(config_of(good), {k: v for k, v in arrays_of(good).items() if k != "__config__"})
    path = write_zip(tmp_path / "bzip2.npz", members, zipfile.ZIP_BZIP2)
    with pytest.raises(ValueError, match="uses zip compression method 12; expected stored or deflated"):
        load_model(path)


def test_an_oversized_config_is_refused(good, tmp_path):
    config = {**config_of(good), "metadata": {"note": "x" * MAX_CONFIG_CHARS}}
    path = rewrite(good, tmp_path, "big.npz", config=config)
    with pytest.raises(ValueError, match=rf"has a config of 8,38\d,\d{{3}} characters; refusing more than "
                                         rf"{MAX_CONFIG_CHARS:,}") as error:
        load_model(path)
    assert len(str(error.value)) < 300


@pytest.mark.parametrize("depth", [40, 100_000])
def test_deeply_nested_configs_are_refused(good, tmp_path, depth):
    text = json.dumps(config_of(good))[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    path = rewrite(good, tmp_path, "deep.npz", config=text)
    with pytest.raises(ValueError, match=r"has a config nested deeper than 32 levels"):
        load_model(path)


def test_moderately_nested_metadata_still_loads(good, tmp_path):
    metadata = {"a": [[[[{"b": [1, 2]}]]]]}
    path = rewrite(good, tmp_path, "nested.npz", config={**config_of(good), "metadata": metadata})
    assert load_model(path).metadata == metadata


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_in_the_config_are_refused(good, tmp_path, literal):
    text = json.dumps(config_of(good))[:-1] + f', "metadata": {{"x": {literal}}}}}'
    with pytest.raises(ValueError, match="has a config holding a non-finite number"):
        load_model(rewrite(good, tmp_path, "nan.npz", config=text))


@pytest.mark.parametrize("name", ["param/2", "optimizer/m/0", "optimizer/v/3"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights_or_optimizer_state_are_refused(good, tmp_path, name, bad):
    array = arrays_of(good)[name].copy()
    array.flat[0] = bad
    with pytest.raises(ValueError, match=f"is damaged: {name} holds non-finite values"):
        load_model(rewrite(good, tmp_path, "nan.npz", replace={name: array}))


def test_weights_that_overflow_the_models_dtype_are_refused(good, tmp_path):
    """A float64 1e39 is finite, but inf in this float32 model."""
    array = arrays_of(good)["param/1"].astype(np.float64)
    array[0] = 1e39
    with pytest.raises(ValueError, match=r"param/1 holds non-finite values \(NaN or inf\) as float32"):
        load_model(rewrite(good, tmp_path, "big.npz", replace={"param/1": array}))


@pytest.mark.parametrize("array", [np.full((4, 8), "1.0"), np.ones((4, 8), dtype=np.int64),
                                   np.ones((4, 8), dtype=np.complex64), np.ones((4, 8), dtype=bool),
                                   np.zeros(4, dtype=[("a", "<f4"), ("b", "<f4", (7,))])])
def test_weights_of_other_dtypes_are_refused(good, tmp_path, array):
    with pytest.raises(ValueError, match=r"is damaged: its weight arrays do not match its layers: param/0 .* holds"):
        load_model(rewrite(good, tmp_path, "dtype.npz", replace={"param/0": array}))


def test_object_weights_are_refused_without_unpickling(good, tmp_path):
    members = model_members(config_of(good), {k: v for k, v in arrays_of(good).items() if k != "__config__"})
    members["param/0.npy"] = npy_bytes(header={"descr": "|O", "fortran_order": False, "shape": (4, 8)}, data=b"x")
    with pytest.raises(ValueError, match=r"param/0 .* holds \(4, 8\) of object"):
        load_model(write_zip(tmp_path / "objects.npz", members))


def test_a_zip_of_unrelated_files_is_not_a_model(tmp_path):
    path = write_zip(tmp_path / "photos.npz", {"a.txt": b"hello", "b/c.jpg": b"\xff\xd8"})
    with pytest.raises(ValueError, match="is not a model file .*no model config inside"):
        load_model(path)


def test_a_config_stored_as_bytes_is_refused(good, tmp_path):
    path = rewrite(good, tmp_path, "bytes.npz", replace={"__config__": np.array(json.dumps(config_of(good)).encode())})
    with pytest.raises(ValueError, match="is not a model file .*__config__ holds"):
        load_model(path)


@pytest.mark.parametrize("edit,message", [
    (lambda c: {**c, "layers": [{"class": "ReLU", "config": {}}] * 1000 + c["layers"]}, "declares 1,003 layers"),
    (lambda c: {**c, "fit_seeds": {**c["fit_seeds"], "pool_size": 2**40}}, "fit_seeds"),
    (lambda c: {**c, "optimizer": {**c["optimizer"], "iterations": 2**64}}, "optimizer iterations"),
    (lambda c: {**c, "metrics": 5}, "damaged config: compile: metrics must be a list of names, got 5"),
    (lambda c: {**c, "metrics": "accuracy"}, "damaged config: compile: metrics must be a list of names, got 'acc"),
    (lambda c: {**c, "seed": 1.5}, "damaged config: Model: seed"),
    (lambda c: {**c, "layers": [{"class": "Dropout", "config": {"rate": 10**400}}, *c["layers"]]},
     "invalid layer configuration"),
])
def test_hostile_config_values_are_refused(good, tmp_path, edit, message):
    with pytest.raises(ValueError, match=message):
        load_model(rewrite(good, tmp_path, "edited.npz", config=edit(config_of(good))))


def test_layers_that_do_not_chain_are_refused(good, tmp_path):
    config = inference_config(good, [dense(4, 8), dense(3, 3)])
    replace = {"param/2": np.zeros((3, 3), dtype=np.float32), "param/3": np.zeros(3, dtype=np.float32)}
    with pytest.raises(ValueError, match=r"has a damaged config: Model: Dense\(4 -> 8.* outputs 8 features"):
        load_model(rewrite(good, tmp_path, "chain.npz", config=config, replace=replace))


def test_a_huge_bad_entry_gives_a_short_message(good, tmp_path):
    config = {**config_of(good), "layers": [{"class": "x" * 10**6, "config": {}}]}
    with pytest.raises(ValueError, match="invalid layer entry") as error:
        load_model(rewrite(good, tmp_path, "long.npz", config=config))
    assert len(str(error.value)) < 400


@pytest.mark.parametrize("metrics", [["x" * 10**6], {"x" * 10**6: 1}, ["f1"] * 10**5 + [None]])
def test_a_huge_metrics_entry_gives_a_short_message(good, tmp_path, metrics):
    config = {**config_of(good), "metrics": metrics}
    with pytest.raises(ValueError, match="has a damaged config: compile: ") as error:
        load_model(rewrite(good, tmp_path, "long.npz", config=config))
    assert len(str(error.value)) < 400


@pytest.mark.parametrize("name", list(_LAYERS))
def test_the_shapes_checked_before_building_are_the_shapes_models_build(name):
    """_param_shapes and _buffer_shapes know each registered layer's arrays without building it: keep it true."""
    makers = {"Dense": lambda: Dense(5, 5), "Dropout": lambda: Dropout(0.5), "BatchNorm": lambda: BatchNorm(5)}
    layer = makers.get(name, _LAYERS[name])()
    model = Model([Dense(3, 5), layer, Dense(5, 2)], seed=0)
    assert [shape for _, shape in _param_shapes(model.layers)] == [p.shape for p in model.parameters()]
    assert [shape for _, shape in _buffer_shapes(model.layers)] == [b.shape for b in model.buffers()]


def test_a_npy_header_that_numpys_tokenizer_chokes_on_is_a_value_error():
    # Found by the property test: a header NumPy's literal_eval rejects and its tokenize fallback raises on.
    import io

    from framework.archive import ArchiveError, read_npy

    text = ("{'descr': '<U1122', 'fortran_order': False, 'shape': (), }" + " " * 50 + "\n{").encode("latin1")
    data = b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + b"x" * 100
    with pytest.raises(ArchiveError):
        read_npy(io.BytesIO(data), len(data), "x.npy", "biuf")


@pytest.fixture
def with_batchnorm(tmp_path):
    path = tmp_path / "batchnorm.npz"
    model = Model([Dense(4, 6), BatchNorm(6), ReLU(), Dense(6, 3)], seed=0)
    model.compile(SoftmaxCrossEntropy(), Adam()).fit(np.random.default_rng(0).normal(size=(20, 4)), np.arange(20) % 3,
                                                     epochs=1, batch_size=8)
    model.save(path)
    return path


@pytest.mark.parametrize("replace,match", [
    ({}, None),
    ({"buffer/0": np.zeros(5, np.float32)}, r"its buffers do not match its layers: buffer/0 \(running_mean of layer 1 "
                                             r"BatchNorm\(n=6.*holds \(5,\) of float32; expected \(6,\) floats"),
    ({"buffer/1": np.zeros((6, 1), np.float32)}, r"buffer/1 \(running_var of layer 1 .* holds \(6, 1\)"),
    ({"buffer/0": np.full(6, np.nan, np.float32)}, r"buffer/0 holds non-finite values"),
    ({"buffer/1": np.full(6, -1.0, np.float32)}, r"buffer/1 \(running_var of layer 1 .*\) holds a negative variance"),
    ({"buffer/1": np.arange(6)}, r"buffer/1 .* holds \(6,\) of int64; expected \(6,\) floats"),
])
def test_batchnorm_running_statistics_are_checked_against_the_layers(with_batchnorm, tmp_path, replace, match):
    if match is None:  # a missing buffer
        path = rewrite(with_batchnorm, tmp_path, "missing.npz", drop=("buffer/1",))
        match = r"buffer/1 \(running_var of layer 1 BatchNorm\(n=6.*\) is missing; expected \(6,\) floats"
    else:
        path = rewrite(with_batchnorm, tmp_path, "bad.npz", replace=replace)
    with pytest.raises(ValueError, match=match):
        load_model(path)
