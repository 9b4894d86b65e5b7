"""`predict` inputs: a CSV's header is never guessed, every cell is checked, overflow is an error, hostile images."""

from __future__ import annotations

import json
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.helpers import assert_one_line_error, main
from tests.model_files import arrays_of, config_of, npy_bytes, rewrite, save_runner_like
from tuning.predict import image_to_grid

MiB = 2**20


@pytest.fixture(scope="module")
def model3(tmp_path_factory):
    """A classifier of 3 features into 2 classes, scaled x / 16 as the runner's metadata says."""
    return save_runner_like(tmp_path_factory.mktemp("model3") / "model.npz", n_in=3, n_out=2)


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    """A classifier of 8x8 images (64 features, pixels 0..16) into 10 classes."""
    return save_runner_like(tmp_path_factory.mktemp("digits") / "model.npz", image_shape=(8, 8))


def predicted_rows(model, path) -> list[dict]:
    result = main("predict", model, path, "--json")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return json.loads(result.stdout)


# ---------------------------------------------------------------------------------------------- CSV headers
@pytest.mark.parametrize("text,n_rows", [
    ("a,b,c\n1,2,3\n4,5,6\n", 2),  # names: a header
    ("0,1,2\n1,2,3\n4,5,6\n", 2),  # 0..n-1: pandas' names for unnamed columns (DataFrame.to_csv(index=False))
    ("1,2,3\n4,5,6\n", 2),  # numbers: data
    ("2,1,0\n4,5,6\n", 2),  # numbers that are not 0..n-1: data
    ("0,1,3\n4,5,6\n", 2),
    ("\ufeffa,b,c\r\n1,2,3\r\n\r\n\n", 1),  # a byte-order mark, CRLF and trailing blank lines
    ("1,2,3", 1),  # no final newline
    (" 1 , 2 ,3e0\n", 1),
])
def test_the_first_row_is_a_header_only_when_no_cell_is_a_number(model3, tmp_path, text, n_rows):
    (tmp_path / "rows.csv").write_text(text, encoding="utf-8")
    assert len(predicted_rows(model3, tmp_path / "rows.csv")) == n_rows


def test_rows_from_a_csv_with_a_header_equal_the_same_rows_from_npy(model3, tmp_path):
    X = np.random.default_rng(0).uniform(0, 16, size=(5, 3))
    np.savetxt(tmp_path / "rows.csv", X, delimiter=",", header="a,b,c", comments="", fmt="%.17g")
    np.save(tmp_path / "rows.npy", X)
    assert predicted_rows(model3, tmp_path / "rows.csv") == predicted_rows(model3, tmp_path / "rows.npy")


@pytest.mark.parametrize("text,message", [
    ("1,,3\n4,5,6\n", "line 1, column 2: '' is not a number"),  # numbers mixed with a blank: data, not a header
    ("1,abc,3\n4,5,6\n", "line 1, column 2: 'abc' is not a number"),
    (",,\n1,2,3\n", "line 1, column 1: '' is not a number"),  # a row of blanks is not a header
    ("nan,inf,nan\n1,2,3\n", "line 1, column 1: 'nan' is not a finite number"),  # nan reads as a number
    ("a,b,c\n1,2,3\n4,,6\n", "line 3, column 2 ('b'): '' is not a number; expected a finite number in every cell"),
    ("a,b,c\n1,NaN,3\n", "line 2, column 2 ('b'): 'NaN' is not a finite number"),
    ("a,b,c\n1,2,-inf\n", "line 2, column 3 ('c'): '-inf' is not a finite number"),
    ("a,b,c\n1,2,1e999\n", "line 2, column 3 ('c'): '1e999' is not a finite number"),
    ("a,b,c\n1,2,3\n4,5\n", "the model expects rows of 3 features, "),
    ("a,b,c\n1,2,3,4\n", "line 2 has 4 cells"),
    ("a,b,c\n1,2,3\n\n4,5,6\n", "line 3 is blank; expected a row of numbers"),
    ('a,b,c\n1,2,"3\n4"\n', r"line 2, column 3 ('c'): '3\n4' is not a number"),  # a quoted newline: still one line
    ('a,b,c\n1,2,"3\n4",\n5,x,6\n', "line 2 has 4 cells"),
    ('a,b,c\n"1\n",2,3\n5,x,6\n', "line 4, column 2 ('b'): 'x'"),  # lines count the quoted newline
    ("a,b,c\n", "holds no rows"),
    ("a,b,c\n1,2,3\n" + "1," * 2 + "9" * 200 + "x\n", "line 3, column 3 ('c'): '9999"),
])
def test_a_bad_cell_is_an_error_naming_its_line_and_column(model3, tmp_path, text, message):
    (tmp_path / "rows.csv").write_text(text)
    result = main("predict", model3, tmp_path / "rows.csv")
    assert_one_line_error(result, message)
    assert str(tmp_path / "rows.csv") in result.stderr and len(result.stderr) < 400


def test_the_issue_example_names_the_pixel(digits_model, tmp_path):
    rows = np.random.default_rng(1).integers(0, 17, size=(3, 64)).astype(str)
    rows[1, 4] = ""
    lines = [",".join(f"pixel_{i}" for i in range(64)), *(",".join(row) for row in rows)]
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n")
    assert_one_line_error(main("predict", digits_model, tmp_path / "rows.csv"),
                          "rows.csv line 3, column 5 ('pixel_4'): '' is not a number; "
                          "expected a finite number in every cell")


@pytest.mark.parametrize("cell", ["nan", "inf"])
def test_npy_cells_that_are_not_finite_are_named_by_index(model3, tmp_path, cell):
    X = np.ones((3, 3))
    X[2, 1] = float(cell)
    np.save(tmp_path / "rows.npy", X)
    assert_one_line_error(main("predict", model3, tmp_path / "rows.npy"), f"rows.npy at index [2, 1]: {cell} is not a "
                                                                          "finite number")


def test_a_npy_header_declaring_a_huge_array_is_refused_before_allocating(model3, tmp_path):
    path = tmp_path / "rows.npy"
    path.write_bytes(npy_bytes(header={"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}, data=b"1234"))
    tracemalloc.start()
    try:
        result = main("predict", model3, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_one_line_error(result, "cannot read")
    assert "declares shape (1000000, 1000000) of float64" in result.stderr and peak < 16 * MiB


@pytest.mark.parametrize("header,message", [
    ({"descr": "|O", "fortran_order": False, "shape": (1, 3)}, "never unpickled"),
    ({"descr": "<U3", "fortran_order": False, "shape": (1, 3)}, "expected booleans or integers or floats"),
    ({"descr": "<c16", "fortran_order": False, "shape": (1, 3)}, "expected booleans or integers or floats"),
    ({"descr": "<f8", "fortran_order": False, "shape": (-1, 3)}, "impossible shape"),
])
def test_npy_rows_of_other_dtypes_or_shapes_are_refused(model3, tmp_path, header, message):
    (tmp_path / "rows.npy").write_bytes(npy_bytes(header=header, data=b"\x00" * 48))
    assert_one_line_error(main("predict", model3, tmp_path / "rows.npy"), message)


# ---------------------------------------------------------------------------------------------- overflow
def test_a_value_that_overflows_after_scaling_names_its_cell(model3, tmp_path):
    (tmp_path / "rows.csv").write_text("a,b,c\n1,2,3\n1,1e40,3\n")
    assert_one_line_error(main("predict", model3, tmp_path / "rows.csv"),
                          "rows.csv line 3, column 2 ('b'): 1e+40 becomes inf after the model's scaling "
                          "(x * 0.0625 + 0, in float32)")
    np.save(tmp_path / "rows.npy", np.array([[1.0, 2.0, -1e300]]))
    assert_one_line_error(main("predict", model3, tmp_path / "rows.npy"), "rows.npy at index [0, 2]: -1e+300 "
                                                                          "becomes -inf")


def test_an_output_that_overflows_inside_the_network_is_an_error(model3, tmp_path):
    arrays = arrays_of(model3)
    path = rewrite(model3, tmp_path, "big.npz", replace={"param/0": np.full_like(arrays["param/0"], 1e30),
                                                         "param/2": np.full_like(arrays["param/2"], 1e30)})
    np.save(tmp_path / "rows.npy", np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]))
    assert_one_line_error(main("predict", path, tmp_path / "rows.npy"),
                          "rows.npy row 0 is not finite: its values overflow inside the network")


def test_a_regression_value_that_overflows_in_target_units_is_an_error(tmp_path):
    model = save_runner_like(tmp_path / "reg.npz", n_in=3, task="regression")
    config = config_of(model)
    config["metadata"]["target_scale"] = {"mean": 0.0, "std": 1e308}
    bias = np.full_like(arrays_of(model)["param/3"], 100.0)
    path = rewrite(model, tmp_path, "huge.npz", config=config, replace={"param/3": bias})
    (tmp_path / "rows.csv").write_text("1,2,3\n")
    assert_one_line_error(main("predict", path, tmp_path / "rows.csv"),
                          "rows.csv line 1 is not finite")


# ---------------------------------------------------------------------------------------------- images
def _png(width: int, height: int, idat: bytes) -> bytes:
    """A PNG whose header declares `width` x `height` 8-bit grey pixels, with the image data `idat`."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _digit(path, size=(40, 40)):
    image = np.zeros(size[::-1], dtype=np.uint8)
    image[size[1] // 4:3 * size[1] // 4, size[0] // 3:2 * size[0] // 3] = 255
    Image.fromarray(image).save(path)
    return path


def test_a_decompression_bomb_is_refused(digits_model, tmp_path):
    (tmp_path / "bomb.png").write_bytes(_png(100_000, 100_000, zlib.compress(b"\x00" * 1000)))
    assert_one_line_error(main("predict", digits_model, tmp_path / "bomb.png"), "is too large an image to read")


def test_an_image_past_pillows_warning_limit_is_refused_too(digits_model, tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 40x40 = 1600: above the limit, below twice it
    assert_one_line_error(main("predict", digits_model, _digit(tmp_path / "d.png")), "is too large an image to read")


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp"])
def test_a_truncated_image_is_refused(digits_model, tmp_path, suffix):
    raw = _digit(tmp_path / f"d{suffix}", (200, 200)).read_bytes()
    (tmp_path / f"cut{suffix}").write_bytes(raw[:len(raw) // 2])
    assert_one_line_error(main("predict", digits_model, tmp_path / f"cut{suffix}"), "cannot read")


def test_a_long_thin_image_is_read_in_bounded_memory(tmp_path):
    path = _digit(tmp_path / "thin.png", (8000, 6))
    tracemalloc.start()
    try:
        grid = image_to_grid(path, (28, 28))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert grid.shape == (28, 28) and grid.max() == 1.0 and peak < 64 * MiB


@pytest.mark.parametrize("shape", [(16, 4), (4, 16), (28, 14)])
def test_a_model_of_images_that_are_not_square_predicts(tmp_path, shape):
    """The digit's box fits the shorter side: a grid narrower than MNIST's 20/28 box of its height works too."""
    model = save_runner_like(tmp_path / "tall.npz", n_in=shape[0] * shape[1], image_shape=shape)
    result = main("predict", model, _digit(tmp_path / "d.png"))
    assert result.returncode == 0 and f"what the model sees ({shape[0]}x{shape[1]}):" in result.stdout, result.stderr
