"""`predict` on model files: the runner's metadata is checked against the network, field by field.

The property-based tests of hostile model files are in test_predict_properties.py.
"""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from tests.helpers import assert_one_line_error, main
from tests.model_files import config_of, rewrite, save_runner_like


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("model_files")


@pytest.fixture(scope="module")
def digits_model(work):
    return save_runner_like(work / "digits.npz", image_shape=(8, 8))


@pytest.fixture(scope="module")
def rows64(work):
    np.save(work / "rows64.npy", np.random.default_rng(0).uniform(0, 16, size=(2, 64)))
    return work / "rows64.npy"


def with_metadata(model, tmp_path, edit, name="edited.npz"):
    """A copy of `model` with `edit(metadata)` applied to its metadata."""
    config = config_of(model)
    edit(config["metadata"])
    return rewrite(model, tmp_path, name, config=config)


def test_a_runner_like_model_predicts(digits_model, rows64):
    result = main("predict", digits_model, rows64, "--json")
    assert result.returncode == 0 and len(json.loads(result.stdout)) == 2, result.stderr


def _update(key, value):
    return lambda meta: meta.update({key: value})


def _scale(key, value):
    return lambda meta: meta["preprocessor"]["scale"].update({key: value})


@pytest.mark.parametrize("edit,field,message", [
    (_scale("mul", [0.0625] * 63), "preprocessor.scale.mul", "expected a list of 64 numbers, got 63 values"),
    (_scale("add", [0.0] * 65), "preprocessor.scale.add", "expected a list of 64 numbers, got 65 values"),
    (_scale("add", ["x"] * 64), "preprocessor.scale.add", "expected finite numbers, got 'x'"),
    (_scale("mul", [True] * 64), "preprocessor.scale.mul", "expected finite numbers, got 'True'"),
    (_scale("mul", [10**400] * 64), "preprocessor.scale.mul", "expected finite numbers"),
    (_scale("mul", None), "preprocessor.scale.mul", "expected a list of 64 numbers, got NoneType"),
    (_update("preprocessor", [1, 2]), "preprocessor", "expected {columns, n_inputs, scale, impute}"),
    (lambda meta: meta["preprocessor"].update(n_inputs=63), "preprocessor", "63 inputs for a network with 64"),
    (_update("classes", [str(i) for i in range(9)]), "classes", "9 class names for a network with 10 outputs"),
    (_update("classes", list(range(10))), "classes", "expected a list of class names (text)"),
    (_update("classes", None), "classes", "expected a list of class names"),
    (_update("task", "clustering"), "task", "expected one of classification, regression, got 'clustering'"),
    (_update("task", ["classification"]), "task", "expected one of classification, regression"),
    (_update("task", "regression"), "task", "a regression model is trained with MeanSquaredError, this network "
                                            "with SoftmaxCrossEntropy"),
    (_update("image_shape", [8, 9]), "image_shape", "8x9 pixels for a network with 64 inputs"),
    (_update("image_shape", [0, 64]), "image_shape", "expected null or two positive integers"),
    (_update("image_shape", [8.0, 8.0]), "image_shape", "expected null or two positive integers"),
    (_update("image_shape", [64]), "image_shape", "expected null or two positive integers"),
    (_update("feature_range", [16, 0]), "feature_range",
     "expected [low, high], finite numbers with low <= high, got [16, 0]"),
    (_update("feature_range", [0, "16"]), "feature_range", "expected [low, high]"),
    (_update("feature_range", [0, None]), "feature_range", "expected [low, high]"),
    (_update("feature_range", [0, 1, 2]), "feature_range", "expected [low, high]"),
    (_update("target_scale", {"mean": 0, "std": 1}), "target_scale", "a classification model has no target scale"),
    (lambda meta: meta.pop("feature_range"), "feature_range", "missing; a model.npz written by"),
    (lambda meta: meta.pop("image_shape"), "image_shape", "missing"),
])
def test_each_metadata_field_is_checked_against_the_network(digits_model, rows64, tmp_path, edit, field, message):
    path = with_metadata(digits_model, tmp_path, edit)
    assert_one_line_error(main("predict", path, rows64), f"predict: {path} has a bad metadata field '{field}': "
                                                          f"{message}")


@pytest.fixture(scope="module")
def regression_model(work):
    return save_runner_like(work / "regression.npz", n_in=4, task="regression")


@pytest.mark.parametrize("edit,field,message", [
    (_update("target_scale", None), "target_scale", "expected {'mean': finite, 'std': finite > 0}"),
    (_update("target_scale", {"mean": 1.0, "std": 0.0}), "target_scale", "expected {'mean'"),
    (_update("target_scale", {"mean": 1.0}), "target_scale", "expected {'mean'"),
    (_update("target_scale", {"mean": "1", "std": 2.0}), "target_scale", "expected {'mean'"),
    (_update("target_scale", {"mean": 1.0, "std": 2.0, "shift": 3}), "target_scale", "expected {'mean'"),
    (_update("classes", ["a"]), "classes", "a regression model has no classes"),
    (_update("task", "classification"), "task", "a classification model is trained with SoftmaxCrossEntropy"),
])
def test_regression_metadata_is_checked(regression_model, tmp_path, edit, field, message):
    np.save(tmp_path / "rows.npy", np.ones((1, 4)))
    path = with_metadata(regression_model, tmp_path, edit)
    assert_one_line_error(main("predict", path, tmp_path / "rows.npy"), f"bad metadata field '{field}': {message}")


def test_a_regression_network_with_several_outputs_is_refused(tmp_path):
    model = save_runner_like(tmp_path / "reg.npz", n_in=4, task="regression")
    config = config_of(model)
    config["layers"][-1]["config"]["n_out"] = 3
    replace = {"param/2": np.zeros((16, 3), dtype=np.float32), "param/3": np.zeros(3, dtype=np.float32),
               **{f"optimizer/velocity/{i}": a for i, a in ((2, np.zeros((16, 3), np.float32)),
                                                             (3, np.zeros(3, np.float32)))}}
    path = rewrite(model, tmp_path, "three.npz", config=config, replace=replace)
    np.save(tmp_path / "rows.npy", np.ones((1, 4)))
    assert_one_line_error(main("predict", path, tmp_path / "rows.npy"),
                          "bad metadata field 'task': a regression network has 1 output, this one has 3")


def test_an_uncompiled_network_is_refused_its_outputs_are_not_probabilities(digits_model, rows64, tmp_path):
    config = {**config_of(digits_model), "loss": None, "optimizer": None}
    path = rewrite(digits_model, tmp_path, "raw.npz", config=config)
    assert_one_line_error(main("predict", path, rows64), "this network with no loss")


@pytest.mark.parametrize("odd", ["\n", "\r", "\x1e", "\x0b", "\u2028", "\x1b[31m"])
def test_an_error_stays_one_line_whatever_the_file_holds(digits_model, rows64, tmp_path, odd):
    config = config_of(digits_model)
    config["layers"][0]["config"][odd] = 1  # Python's message quotes the bad argument name as it is
    path = rewrite(digits_model, tmp_path, f"odd{odd}name.npz", config=config)
    result = main("predict", path, rows64)
    assert_one_line_error(result, "got an unexpected keyword argument")
    message = result.stderr[:-1]  # without the newline that ends it
    assert odd not in message and message.count(repr(odd)[1:-1]) == 2  # escaped, in the name and the message


def test_a_zip_with_an_encrypted_member_is_refused(work, digits_model, rows64):
    raw = bytearray(digits_model.read_bytes())
    for header in (b"PK\x03\x04", b"PK\x01\x02"):  # set the encryption flag in the local and central headers
        start = raw.index(header)
        raw[start + (6 if header == b"PK\x03\x04" else 8)] |= 0x1
    (work / "encrypted.npz").write_bytes(bytes(raw))
    assert_one_line_error(main("predict", work / "encrypted.npz", rows64), "is encrypted")
    assert zipfile.ZipFile(work / "encrypted.npz").infolist()[0].flag_bits & 0x1
