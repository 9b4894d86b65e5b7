"""`predict`: raw rows and digit images through the model's stored preprocessing, and bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from framework import load_model
from tests.helpers import digit_images_28, main, make_mnist_folder, run_quick
from tuning.inputs import read_rows
from tuning.predict import image_to_grid, shade
from tuning.preprocess import Preprocessor

ONE_CONFIG = ["search.repeats=1", "search.n_jobs=1", "search.space={lr = [0.1]}", "train.hidden_units=64"]


def predict_cli(*args):
    return main("predict", *args)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits") / "exp"
    result = run_quick(folder, ONE_CONFIG)
    return folder, result


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("mnist")
    data = make_mnist_folder(base / "data")
    folder = base / "exp"
    run_quick(folder, [*ONE_CONFIG, f"data.dataset={str(data)!r}", "train.epochs=8"])
    return folder


def _save_image(path: Path, image: np.ndarray, size: int, dark_on_light: bool) -> Path:
    pixels = image / image.max()
    pixels = 1 - pixels if dark_on_light else pixels
    Image.fromarray((pixels * 255).astype(np.uint8)).resize((size, size), Image.Resampling.NEAREST).save(path)
    return path


def test_csv_rows_give_the_classes_model_predict_gives(digits_run, tmp_path):
    folder, result = digits_run
    X_test, _ = result.splits._X_test, result.splits._y_test
    csv = tmp_path / "test.csv"
    header = ",".join(f"pixel_{i}" for i in range(64))
    np.savetxt(csv, X_test, delimiter=",", header=header, comments="", fmt="%g")
    out = predict_cli(folder / "model.npz", csv, "--json")
    assert out.returncode == 0, out.stderr
    predicted = [int(r["predicted"]) for r in json.loads(out.stdout)]
    model = load_model(folder / "model.npz")
    expected = model.predict(Preprocessor.from_dict(model.metadata["preprocessor"]).transform(X_test)).argmax(axis=1)
    assert predicted == expected.tolist()
    assert predict_cli(folder, csv, "--json").stdout == out.stdout  # the experiment folder names its model
    text = predict_cli(folder / "model.npz", csv, "--top", "2").stdout.splitlines()
    assert len(text) == len(X_test) and text[0].startswith(f"row 0: {expected[0]} (probability ")


def test_npy_rows_and_a_single_row(digits_run, tmp_path):
    folder, result = digits_run
    np.save(tmp_path / "one.npy", result.splits._X_test[0])
    out = predict_cli(folder / "model.npz", tmp_path / "one.npy")
    assert out.returncode == 0 and out.stdout.startswith("row 0: ")


@pytest.mark.parametrize("size, dark_on_light", [(8, False), (64, True), (200, True)])
def test_an_image_of_a_known_digit_prints_that_digit(digits_run, tmp_path, size, dark_on_light):
    from sklearn.datasets import load_digits

    folder, _ = digits_run
    digits = load_digits()
    for index in (3, 10, 42):  # a 3, a 0 and a 1 drawn by different writers
        path = _save_image(tmp_path / f"d{index}.png", digits.images[index], size, dark_on_light)
        out = predict_cli(folder / "model.npz", path)
        assert out.returncode == 0, out.stderr
        assert "what the model sees (8x8):" in out.stdout
        assert f"predicted: {digits.target[index]} (probability" in out.stdout


def test_a_28x28_image_with_an_mnist_model(mnist_run, tmp_path):
    images, labels = digit_images_28()
    for index in (1500, 1510, 1520):  # from the t10k split, never trained on
        path = _save_image(tmp_path / f"m{index}.png", images[index], 28, dark_on_light=False)
        out = predict_cli(mnist_run / "model.npz", path)
        assert out.returncode == 0, out.stderr
        assert "what the model sees (28x28):" in out.stdout
        assert f"predicted: {labels[index]} (probability" in out.stdout


def test_image_grid_inverts_crops_and_centres(tmp_path):
    image = np.full((50, 80), 255, dtype=np.uint8)
    image[10:30, 50:60] = 0  # a dark bar on white, off-centre
    Image.fromarray(image).save(tmp_path / "bar.png")
    grid = image_to_grid(tmp_path / "bar.png", (28, 28))
    assert grid.shape == (28, 28) and grid.max() == pytest.approx(1.0)
    rows, cols = np.nonzero(grid > 0.5)
    assert rows.min() >= 4 and rows.max() <= 23  # inside MNIST's 20x20 box
    assert abs((cols.min() + cols.max()) / 2 - 13.5) <= 1  # centred
    assert grid[0].max() == 0 and grid[:, 0].max() == 0  # background is dark
    assert shade(grid).count("\n") == 27


def test_bad_inputs_exit_2_with_one_line(digits_run, tmp_path):
    folder, _ = digits_run
    model = folder / "model.npz"
    np.savetxt(tmp_path / "wide.csv", np.ones((2, 65)), delimiter=",")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "broken.png").write_bytes(b"not an image at all")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "blank.png").write_bytes(b"")
    Image.fromarray(np.full((20, 20), 255, dtype=np.uint8)).save(tmp_path / "white.png")
    cases = [
        (model, tmp_path / "wide.csv", "expects rows of 64 features"),
        (model, tmp_path / "empty.csv", "holds no rows"),
        (model, tmp_path / "broken.png", "cannot read"),
        (model, tmp_path / "white.png", "looks blank"),
        (model, tmp_path / "notes.txt", "unknown type"),
        (model, tmp_path / "missing.csv", "no such file"),
        (tmp_path / "notes.txt", tmp_path / "wide.csv", "not a model file"),
        (tmp_path, tmp_path / "wide.csv", "no model.npz in this folder (the experiment has not finished"),
    ]
    for model_path, source, message in cases:
        out = predict_cli(model_path, source)
        assert out.returncode == 2, (source, out.stderr)
        assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_a_table_model_refuses_images(tmp_path):
    folder = tmp_path / "iris"
    run_quick(folder, [*ONE_CONFIG, "data.dataset=iris", "train.epochs=3"])
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / "x.png")
    out = predict_cli(folder / "model.npz", tmp_path / "x.png")
    assert out.returncode == 2 and "trained on 4 features, not images" in out.stderr


def test_read_rows_skips_a_header_and_checks_width(tmp_path):
    (tmp_path / "h.csv").write_text("a,b\n1,2\n3,4\n")
    rows = read_rows(tmp_path / "h.csv", 2)
    assert rows.values.tolist() == [[1, 2], [3, 4]] and rows.names == ["a", "b"] and rows.lines == [2, 3]
    (tmp_path / "n.csv").write_text("1,2\n3,x\n")
    with pytest.raises(Exception, match="n.csv line 2, column 2: 'x' is not a number"):
        read_rows(tmp_path / "n.csv", 2)
