"""Properties of `predict` on hostile input: whatever the model file or input holds, the promise for bad input holds.

Random bytes, structurally valid but hostile model files, mutated genuine ones, random CSV text
and damaged images go through the CLI; each must give exit code 0 or 2, at most one line on
stderr, no traceback, no warning and no exception.
"""

from __future__ import annotations

import json
import os
import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from framework.serialization import FORMAT
from tests.helpers import QUICK, main, run_quick
from tests.model_files import config_of, model_members, rewrite, runner_metadata, save_runner_like, write_zip

# A few dozen examples each keep the suite fast; FUZZ_EXAMPLES=5000 searches harder, locally.
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 40)), deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("properties")


@pytest.fixture(scope="module")
def digits_model(work):
    return save_runner_like(work / "digits.npz", image_shape=(8, 8))


def predict_cleanly(model, source) -> None:
    """`predict MODEL SOURCE` keeps the promise for bad input: exit 0 or 2, at most one line, no warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = main("predict", model, source)  # an exception escaping main fails the test
    shown = [f"{w.category.__name__}: {w.message}" for w in caught
             if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))]
    assert not shown, shown
    assert result.returncode in (0, 2), (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) <= 1, result.stderr
    assert (result.returncode == 2) == result.stderr.startswith("error: "), result.stderr
    # --hypothesis-show-statistics shows how far the examples get: which check refused them, or a prediction
    words = re.sub(r"\S*[/\\]\S*", "FILE", result.stderr).split()  # paths differ from run to run
    event("predicted" if result.returncode == 0 else " ".join(words[:6]))


json_leaves = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False)
               | st.text(max_size=6))
json_values = st.recursive(json_leaves, lambda kids: st.lists(kids, max_size=4)
                           | st.dictionaries(st.text(max_size=6), kids, max_size=4), max_leaves=10)
odd_sizes = st.sampled_from([0, -1, 2**40, 10**6, True, 2.5, "3", None])


@st.composite
def layer_specs(draw) -> dict:
    """One layer entry: mostly well-formed, sometimes with odd sizes, unknown classes or junk arguments."""
    kind = draw(st.sampled_from(["Dense", "Dense", "ReLU", "Tanh", "Sigmoid", "Softmax", "LeakyReLU", "Dropout",
                                 "Conv2D"]))
    size = st.integers(1, 5) | odd_sizes
    config = {"Dense": lambda: {"n_in": draw(size), "n_out": draw(size), "init": draw(st.sampled_from(["he", "x"]))},
              "Dropout": lambda: {"rate": draw(st.floats(-1, 2) | json_leaves)},
              "LeakyReLU": lambda: {"negative_slope": draw(st.floats(-1, 1) | json_leaves)}}.get(kind, dict)()
    if draw(st.integers(0, 9)) == 0:
        config[draw(st.text(max_size=4))] = draw(json_values)
    return {"class": kind, "config": config}


@st.composite
def chains(draw, n_in: int) -> list[dict]:
    """Dense layers whose widths chain from n_in, with activations between: gets a file past its layers."""
    widths = [n_in, *draw(st.lists(st.integers(1, 5), min_size=1, max_size=3))]
    layers = []
    for a, b in zip(widths, widths[1:]):
        layers += [{"class": "Dense", "config": {"n_in": a, "n_out": b, "init": "he"}},
                   {"class": draw(st.sampled_from(["ReLU", "Tanh", "Sigmoid"])), "config": {}}]
    return layers[:-1]


def param_shapes(layers: list[dict]) -> list[tuple]:
    shapes = []
    for spec in layers:
        c = spec.get("config", {})
        if spec["class"] == "Dense" and all(type(c.get(k)) is int and 0 < c[k] < 50 for k in ("n_in", "n_out")):
            shapes += [(c["n_in"], c["n_out"]), (c["n_out"],)]
    return shapes


@st.composite
def arrays_like(draw, shape: tuple) -> np.ndarray:
    """An array of `shape` (or, sometimes, another), of a float dtype (or, sometimes, another), maybe not finite."""
    if draw(st.integers(0, 7)) == 0:
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))
    dtype = draw(st.sampled_from(["<f4", "<f4", "<f8", ">f8", "<i8", "|b1", "<c8", "<U2", "<f2"]))
    finite = draw(st.integers(0, 4)) > 0
    bounds = {"min_value": -1e4, "max_value": 1e4} if finite else {}  # 1e4: within float16
    elements = {"allow_nan": not finite, "allow_infinity": not finite, **bounds} if dtype[1] == "f" else None
    return draw(hnp.arrays(np.dtype(dtype), shape, elements=elements))


def near_values(n: int):
    """JSON close to what a metadata field holds: lists of about `n` numbers or names, pairs, small dicts."""
    numbers = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-3, 10**400) | st.booleans()
    return (st.lists(numbers, min_size=max(n - 1, 0), max_size=n + 1) | st.lists(st.text(max_size=3), max_size=n + 1)
            | st.lists(st.integers(-1, 9), min_size=2, max_size=2)
            | st.fixed_dictionaries({"mean": numbers, "std": numbers})
            | st.sampled_from(["classification", "regression", "", None]) | json_values)


@st.composite
def runner_like(draw) -> tuple[dict, dict[str, np.ndarray], int]:
    """A valid model file's config and arrays, as the runner writes them: a chain of Dense layers and metadata."""
    n_in = draw(st.integers(1, 4))
    task = draw(st.sampled_from(["classification", "regression"]))
    layers = draw(chains(n_in))
    if task == "regression":
        layers[-1]["config"]["n_out"] = 1
    shapes = param_shapes(layers)
    n_out = shapes[-1][0]
    config = {"format": FORMAT, "version": 1, "dtype": draw(st.sampled_from(["float32", "float64"])), "seed": 0,
              "layers": layers, "optimizer": None, "metrics": None,
              "loss": {"class": "SoftmaxCrossEntropy" if task == "classification" else "MeanSquaredError",
                       "config": {}},
              "metadata": runner_metadata(n_in, n_out, task, draw(st.sampled_from([None, (1, n_in), (n_in, 1)])))}
    arrays = {f"param/{i}": draw(hnp.arrays(np.float32, shape, elements={"min_value": -3, "max_value": 3}))
              for i, shape in enumerate(shapes)}
    return config, arrays, n_in


@st.composite
def hostile_models(draw) -> tuple[dict, dict[str, np.ndarray], int]:
    """A runner-like model file with one to three hostile edits: a field, a layer, a size, an array, metadata."""
    config, arrays, n_in = draw(runner_like())
    kinds = ["metadata", "metadata", "metadata", "array", "array", "layer", "size", "top"]
    edits = draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=3))
    for edit in sorted(edits, key=lambda e: e == "top"):  # last: it may replace the layers or metadata wholesale
        if edit == "metadata":
            field = draw(st.sampled_from(sorted(config["metadata"]) or ["task"]))
            if draw(st.integers(0, 4)) == 0:
                config["metadata"].pop(field, None)
            else:
                config["metadata"][field] = draw(near_values(n_in))
        elif edit == "array" and arrays:
            name = draw(st.sampled_from(sorted(arrays)))
            if draw(st.integers(0, 4)) == 0:
                del arrays[name]
            else:
                arrays[name] = draw(arrays_like(arrays[name].shape))
        elif edit == "layer":
            index = draw(st.integers(0, len(config["layers"])))
            config["layers"][index:index + draw(st.integers(0, 1))] = [draw(layer_specs())]
        elif edit == "size":
            dense = [spec for spec in config["layers"] if spec["class"] == "Dense"]
            spec = draw(st.sampled_from(dense)) if dense else {"config": {}}
            spec["config"][draw(st.sampled_from(["n_in", "n_out"]))] = draw(st.integers(1, 6) | odd_sizes)
        else:
            config[draw(st.sampled_from(["format", "version", "dtype", "seed", "loss", "metrics", "layers",
                                         "optimizer", "metadata", "junk"]))] = draw(json_values)
    return config, arrays, n_in


@st.composite
def input_rows(draw, n_in: int) -> np.ndarray:
    width = n_in if draw(st.integers(0, 5)) > 0 else draw(st.integers(1, 6))
    return draw(hnp.arrays(np.float64, (draw(st.integers(1, 3)), width),
                           elements=st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([1e38, -1e300])))


@FUZZ
@given(st.binary(max_size=600), st.sampled_from([b"", b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY\x01\x00"]))
def test_random_bytes_as_a_model_file(work, data, prefix):
    (work / "random.npz").write_bytes(prefix + data)
    np.save(work / "rows1.npy", np.ones((1, 1)))
    predict_cleanly(work / "random.npz", work / "rows1.npy")


@FUZZ
@given(hostile_models(), st.data())
def test_structurally_valid_but_hostile_model_files(work, model, data):
    config, arrays, n_in = model
    write_zip(work / "hostile.npz", model_members(config, arrays))
    np.save(work / "rows.npy", data.draw(input_rows(n_in)))
    predict_cleanly(work / "hostile.npz", work / "rows.npy")


@pytest.fixture(scope="module")
def genuine(work) -> tuple[bytes, dict]:
    """A model.npz the runner wrote (iris: 4 features, 3 classes), as bytes, and its config."""
    run_quick(work / "iris", [*QUICK, "train.epochs=2", "search.repeats=1", "search.space={lr = [0.1]}"])
    return (work / "iris" / "model.npz").read_bytes(), config_of(work / "iris" / "model.npz")


def _paths(value, prefix=()):
    """Every (path, value) in a JSON tree."""
    yield prefix, value
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield from _paths(child, (*prefix, key))


@FUZZ
@given(st.data())
def test_a_mutated_genuine_model_file(work, genuine, data):
    raw, config = genuine
    how = data.draw(st.sampled_from(["flip", "truncate", "edit", "edit"]))
    path = work / "mutated.npz"
    if how == "flip":
        mutated = bytearray(raw)
        for position in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=8)):
            mutated[position] ^= data.draw(st.integers(1, 255))
        path.write_bytes(bytes(mutated))
    elif how == "truncate":
        path.write_bytes(raw[:data.draw(st.integers(0, len(raw) - 1))])
    else:
        edited = json.loads(json.dumps(config))
        for _ in range(data.draw(st.integers(1, 3))):
            where, _ = data.draw(st.sampled_from(list(_paths(edited))[1:]))
            parent = edited
            for key in where[:-1]:
                parent = parent[key]
            parent[where[-1]] = data.draw(json_values)
        rewrite(work / "iris" / "model.npz", work, "mutated.npz", config=edited)
    np.save(work / "rows4.npy", data.draw(input_rows(4)))
    predict_cleanly(path, work / "rows4.npy")


def test_the_genuine_model_predicts(work, genuine):
    np.save(work / "rows4.npy", np.array([[5.1, 3.5, 1.4, 0.2]]))
    result = main("predict", work / "iris" / "model.npz", work / "rows4.npy")
    assert result.returncode == 0 and result.stdout.startswith("row 0: setosa"), result.stderr


@FUZZ
@given(st.lists(st.lists(st.sampled_from(["1", "0", "", " ", "nan", "x", "1e40", "-2.5", '"3\n"', "inf"]),
                         min_size=1, max_size=4), max_size=4), st.sampled_from(["\n", "\r\n"]))
def test_random_csv_text(work, genuine, rows, newline):
    (work / "random.csv").write_text(newline.join(",".join(row) for row in rows), newline="")
    predict_cleanly(work / "iris" / "model.npz", work / "random.csv")


@FUZZ
@given(st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "TIFF"]), st.integers(0, 2000), st.binary(max_size=64))
def test_truncated_or_damaged_images(work, digits_model, kind, cut, junk):
    from PIL import Image

    suffix = {"JPEG": ".jpg", "TIFF": ".tif"}.get(kind, f".{kind.lower()}")
    image = np.zeros((30, 30), dtype=np.uint8)
    image[5:25, 12:18] = 255
    Image.fromarray(image).save(work / f"whole{suffix}", format=kind)
    raw = (work / f"whole{suffix}").read_bytes()
    (work / f"damaged{suffix}").write_bytes(raw[:cut] + junk)
    predict_cleanly(digits_model, work / f"damaged{suffix}")
