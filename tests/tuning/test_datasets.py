"""Datasets: built-in sets, the user's files, splits and train-only scaling."""

from __future__ import annotations

import math
import re
import struct

import numpy as np
import pandas as pd
import pytest

from tuning.datasets import load_dataset
from tuning.errors import UserError
from tuning.preprocess import Affine
from tuning.splits import split


@pytest.mark.parametrize("name, task, n_classes", [
    ("digits", "classification", 10), ("iris", "classification", 3), ("wine", "classification", 3),
    ("breast_cancer", "classification", 2), ("diabetes", "regression", 0),
])
def test_builtin_datasets(name, task, n_classes):
    dataset = load_dataset(name)
    assert dataset.task == task and len(dataset.classes) == n_classes
    assert len(dataset.X) == len(dataset.y) > 100
    if task == "classification":
        assert set(np.unique(dataset.y)) == set(range(n_classes))


def test_csv_label_first_column_or_named(tmp_path):
    frame = pd.DataFrame({"species": ["b", "a", "c", "a"] * 10, "x1": np.arange(40.0), "x2": np.ones(40)})
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    dataset = load_dataset(str(path))
    assert dataset.classes == ["a", "b", "c"] and dataset.X.shape == (40, 2)
    assert list(dataset.y[:4]) == [1, 0, 2, 0]
    frame[["x1", "x2", "species"]].to_csv(path, index=False)  # label last, chosen by name
    named = load_dataset(str(path), target="species")
    assert named.classes == ["a", "b", "c"] and named.X.shape == (40, 2)
    assert list(named.y[:4]) == [1, 0, 2, 0]


def test_csv_float_target_is_regression(tmp_path):
    path = tmp_path / "r.csv"
    pd.DataFrame({"y": np.linspace(0, 1, 30) + 0.01, "x": np.arange(30) * 3}).to_csv(path, index=False)
    assert load_dataset(str(path)).task == "regression"


@pytest.mark.parametrize("frame, missing, message", [
    (pd.DataFrame({"y": [0, 1] * 5, "x": [1.0, None] * 5}), "error", "column 'x' has 5 missing values"),
    (pd.DataFrame({"y": [0] * 10, "x": np.linspace(0, 1, 10)}), "impute", "single class"),
    (pd.DataFrame({"y": [0, 1] * 5, "x": [None] * 10}), "impute", "at least one feature column"),
])
def test_bad_csv_files(tmp_path, frame, missing, message):
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(UserError, match=message):
        load_dataset(str(path), missing=missing)


def test_missing_target_column_and_unknown_paths(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame({"y": [0, 1] * 5, "x": np.arange(10)}).to_csv(path, index=False)
    with pytest.raises(UserError, match="no column 'label'"):
        load_dataset(str(path), target="label")
    with pytest.raises(UserError, match="neither a built-in"):
        load_dataset("mnist-that-is-not-here")
    (tmp_path / "d.txt").write_text("1,2")
    with pytest.raises(UserError, match="unknown type"):
        load_dataset(str(tmp_path / "d.txt"))


def test_npz_plain_and_keras_style(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "plain.npz", X=rng.normal(size=(50, 4)), y=rng.integers(0, 3, 50))
    plain = load_dataset(str(tmp_path / "plain.npz"))
    assert plain.X.shape == (50, 4) and plain.test is None
    np.savez(tmp_path / "keras.npz", x_train=rng.integers(0, 255, (60, 5, 5)), y_train=np.arange(60) % 3,
             x_test=rng.integers(0, 255, (20, 5, 5)), y_test=np.arange(20) % 3)
    keras = load_dataset(str(tmp_path / "keras.npz"))
    assert keras.X.shape == (60, 25) and keras.image_shape == (5, 5)
    assert keras.test[0].shape == (20, 25)
    np.savez(tmp_path / "wrong.npz", a=np.zeros(3))
    with pytest.raises(UserError, match="must hold arrays X and y"):
        load_dataset(str(tmp_path / "wrong.npz"))


def test_mnist_idx_folder(mnist_folder):
    dataset = load_dataset(str(mnist_folder))
    assert dataset.X.shape == (1500, 784) and dataset.image_shape == (28, 28)
    assert dataset.test[0].shape == (297, 784) and dataset.X.max() == 255
    splits = split(dataset, 0.2, 0.2, seed=0)
    assert len(splits.X_train) + len(splits.X_val) == 1500  # the given t10k split is the test split
    assert splits.n_test == 297


def test_truncated_idx_file_is_refused(mnist_folder):
    path = mnist_folder / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(UserError, match="truncated"):
        load_dataset(str(mnist_folder))


def test_split_is_stratified_disjoint_and_counts_test_reads():
    dataset = load_dataset("digits")
    splits = split(dataset, 0.2, 0.25, seed=0)
    n = len(dataset.y)
    assert splits.n_test == math.ceil(0.2 * n)  # scikit-learn rounds the test share up
    assert len(splits.y_val) == pytest.approx(0.25 * (n - splits.n_test), abs=1)
    train, val = splits.folds[0]
    assert not set(train) & set(val) and len(train) + len(val) == len(splits.y_rest) == n - splits.n_test
    train_share = np.bincount(splits.y_train) / len(splits.y_train)
    val_share = np.bincount(splits.y_val) / len(splits.y_val)
    assert np.abs(train_share - val_share).max() < 0.02
    assert splits.test_reads == 0
    splits.test()
    assert splits.test_reads == 1


@pytest.mark.parametrize("kind", ["minmax", "standard", "none"])
def test_scaler_is_fit_on_the_rows_given(kind):
    X = np.random.default_rng(0).normal(3, 2, size=(100, 3))
    affine = Affine.fit(kind, X[:50])
    scaled = affine.apply(X[:50])
    assert scaled.dtype == np.float32
    if kind == "minmax":
        assert np.allclose(scaled.min(0), 0, atol=1e-6) and np.allclose(scaled.max(0), 1, atol=1e-6)
    elif kind == "standard":
        assert np.allclose(scaled.mean(0), 0, atol=1e-5) and np.allclose(scaled.std(0), 1, atol=1e-5)
    else:
        assert np.allclose(scaled, X[:50])
    again = Affine.from_dict(affine.to_dict())
    assert np.array_equal(again.apply(X), affine.apply(X))


@pytest.mark.parametrize("value, what", [(np.inf, "infinite"), (-np.inf, "infinite"),
                                          (1e39, "beyond float32's range"), (np.nan, "missing")])
def test_features_must_be_finite_and_within_float32(tmp_path, value, what):
    X = np.random.default_rng(0).random((20, 3))
    X[4, 2] = value
    np.savez(tmp_path / "d.npz", X=X, y=np.arange(20) % 2)
    with pytest.raises(UserError, match=rf"d.npz row 4, column 2: .* is {what}"):
        load_dataset(str(tmp_path / "d.npz"))
    if not np.isnan(value):  # (a CSV's empty cell is a missing value, refused above)
        frame = pd.DataFrame({"y": np.arange(20) % 2, "a": X[:, 0], "b": X[:, 2]})
        frame.to_csv(tmp_path / "d.csv", index=False)
        with pytest.raises(UserError, match=rf"d.csv line 6, column 'b': .* is {what}"):
            load_dataset(str(tmp_path / "d.csv"))


def test_a_npy_named_npz_and_a_test_split_with_nan_are_refused(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((10, 3)))
    (tmp_path / "a.npy").rename(tmp_path / "a.npz")
    with pytest.raises(UserError, match=r"cannot read .*a.npz as .npz: it holds a single array"):
        load_dataset(str(tmp_path / "a.npz"))
    x_test = np.ones((5, 3))
    x_test[1, 1] = np.nan
    np.savez(tmp_path / "k.npz", x_train=np.ones((10, 3)), y_train=np.arange(10) % 2, x_test=x_test,
             y_test=np.arange(5) % 2)
    with pytest.raises(UserError, match=r"k.npz \(test split\) row 1, column 1: nan is missing"):
        load_dataset(str(tmp_path / "k.npz"))


@pytest.mark.parametrize("header", [
    struct.pack(">BBBB", 0, 0, 8, 3) + struct.pack(">3I", 4_000_000_000, 4_000_000_000, 4_000_000_000),  # huge
    struct.pack(">BBBB", 0, 0, 8, 200),  # 200 dimensions, none given
])
def test_an_idx_header_claiming_more_than_the_file_holds_is_refused(mnist_folder, header):
    (mnist_folder / "train-images-idx3-ubyte.gz").unlink()
    (mnist_folder / "train-images-idx3-ubyte").write_bytes(header + b"\0" * 100)
    with pytest.raises(UserError, match="is truncated"):
        load_dataset(str(mnist_folder))


@pytest.mark.parametrize("source", ["iris", "d.npz", "mnist"])
def test_a_target_column_for_a_source_without_columns_is_refused(tmp_path, source):
    np.savez(tmp_path / "d.npz", X=np.ones((10, 2)), y=np.arange(10) % 2)
    spec = source if source == "iris" else str(tmp_path / source)
    with pytest.raises(UserError, match=r"data.target = 'label' applies to a CSV file's columns, but .* is not a CSV"):
        load_dataset(spec, target="label")


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer"])
def test_bundled_sets_read_without_scikit_learn_equal_its_loaders(name):
    from sklearn import datasets

    bunch, dataset = getattr(datasets, f"load_{name}")(), load_dataset(name)
    assert dataset.X.dtype == bunch.data.dtype and np.array_equal(dataset.X, bunch.data)
    assert dataset.y.dtype == np.int64 and np.array_equal(dataset.y, bunch.target)
    assert dataset.classes == [str(c) for c in bunch.target_names] and dataset.task == "classification"


def test_digits_read_without_scikit_learn_equal_load_digits(tmp_path):
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    bunch, dataset = load_digits(), load_dataset("digits")
    assert dataset.X.dtype == bunch.data.dtype and np.array_equal(dataset.X, bunch.data)
    assert dataset.y.dtype == np.int64 and np.array_equal(dataset.y, bunch.target)
    assert dataset.classes == [str(c) for c in bunch.target_names] and dataset.image_shape == (8, 8)
    code = ("import sys; from tuning.config import load_experiment; from tuning.prepare import prepare; "
            f"prepare(load_experiment(), {str(tmp_path / 'exp')!r}); print('sklearn' in sys.modules)")
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert imported.strip() == "False"


@pytest.mark.parametrize("n, test_size", [(10, 0.2), (37, 0.25), (150, 0.2), (151, 0.33), (1797, 0.2), (1150, 0.1)])
@pytest.mark.parametrize("classes", [None, "balanced", "skewed", "labels"])
def test_holdout_equals_train_test_split(n, test_size, classes):
    from sklearn.model_selection import train_test_split

    from tuning.splits import holdout

    for seed in range(8):
        rng = np.random.default_rng(seed)
        y = {None: None, "balanced": np.arange(n) % 3, "skewed": np.minimum(rng.geometric(0.4, n), 5),
             "labels": rng.choice(np.array([-7, 3, 11, 40]), n, p=[0.1, 0.2, 0.3, 0.4])}[classes]
        if y is not None and np.unique(y, return_counts=True)[1].min() < 2:
            y[:2] = y[2]  # scikit-learn needs two rows of every class; tested below
        try:
            expected = train_test_split(np.arange(n), test_size=test_size, random_state=seed, stratify=y)
        except ValueError as exc:  # too few rows for the classes: the same refusal
            with pytest.raises(ValueError, match=re.escape(str(exc))):
                holdout(n, test_size, seed, y)
            continue
        got = holdout(n, test_size, seed, y)
        assert len(got) == 2 and all(g.dtype == e.dtype and np.array_equal(g, e) for g, e in zip(got, expected))


def test_holdout_refuses_what_train_test_split_refuses():
    from sklearn.model_selection import train_test_split

    from tuning.splits import holdout

    for n, test_size, y in [(10, 0.2, np.array([0] * 9 + [1])), (5, 0.2, np.arange(5) % 3), (3, 0.9, None)]:
        with pytest.raises(ValueError) as theirs:
            train_test_split(np.arange(n), test_size=test_size, random_state=0, stratify=y)
        with pytest.raises(ValueError) as ours:
            holdout(n, test_size, 0, y)
        assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16, np.int64, np.uint8, bool])
def test_minmax_scale_equals_minmax_scaler(dtype):
    from sklearn.preprocessing import MinMaxScaler

    from tuning.preprocess import minmax_scale

    for seed, shape in enumerate([(1, 3), (2, 1), (17, 5), (200, 64), (1000, 12)]):
        rng = np.random.default_rng(seed)
        spread = [1e-3, 1, 10] if dtype is np.float16 else [1e-9, 1, 1e3]  # within float16's range
        X = (rng.normal(0, 50, shape) * rng.choice(spread, shape[1])).astype(dtype) if dtype is not bool \
            else rng.random(shape) < 0.5
        if shape[1] > 2:
            X[:, 1] = X[0, 1]  # a constant column
        scaler = MinMaxScaler().fit(X)
        scale, add = minmax_scale(X)
        for ours, theirs in ((scale, scaler.scale_), (add, scaler.min_)):
            assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)
        fitted = Affine.fit("minmax", X)
        assert np.array_equal(fitted.mul, scaler.scale_) and np.array_equal(fitted.add, scaler.min_)
    assert minmax_scale(np.array([[1.0, np.nan], [2.0, 3.0]])) is None  # left to scikit-learn
