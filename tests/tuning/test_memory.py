"""Issue 15: the search process holds an array's features about twice (raw rows, one scaled copy), not five
times, and what it computes from them is the same bit for bit as gathering and copying them would be."""

from __future__ import annotations

import copy
import pickle
import tracemalloc
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from tuning.config import load_experiment
from tuning.datasets import Dataset, load_dataset
from tuning.prepare import _permute_rows, data_record, prepare, split_rows
from tuning.preprocess import Preprocessor
from tuning.refit import finalize
from tuning.splits import split
from tuning.trial_data import TrialData, fit_rows, rows_range, scaled_rows


def _pixels(rows: int = 3000, features: int = 64, seed: int = 0, dtype=np.float32) -> Dataset:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, rows)
    X = (rng.random((rows, features)) * 255).astype(dtype)
    return Dataset("pixels", X, y, "classification", ["a", "b", "c", "d"])


def _same_splits(a, b) -> None:
    for name in ("X_rest", "y_rest", "_X_test", "_y_test", "test_rows"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y), name
    assert len(a.folds) == len(b.folds) and a.cross_validated == b.cross_validated
    for (ta, va), (tb, vb) in zip(a.folds, b.folds, strict=True):
        assert np.array_equal(ta, tb) and np.array_equal(va, vb)


def test_permute_rows_in_place_is_fancy_indexing():
    rng = np.random.default_rng(3)
    X = rng.random((500, 7))
    for order in (rng.permutation(500), np.arange(500), np.r_[1, 0, np.arange(2, 500)]):
        Y = X.copy()
        _permute_rows(Y, order)
        assert np.array_equal(Y, X[order])


@pytest.mark.parametrize("folds", [0, 3])
@pytest.mark.parametrize("kind", ["array", "given test split", "read-only", "fortran", "int", "table"])
def test_split_rows_gives_splits_splits_holding_the_features_once(kind, folds):
    dataset = _pixels(dtype=np.int64 if kind == "int" else np.float32)
    if kind == "given test split":
        dataset = replace(dataset, X=dataset.X[:2400], y=dataset.y[:2400], test=(dataset.X[2400:], dataset.y[2400:]))
    elif kind == "read-only":
        dataset.X.flags.writeable = False
    elif kind == "fortran":
        dataset = replace(dataset, X=np.asfortranarray(dataset.X))
    elif kind == "table":
        columns = [f"c{i}" for i in range(dataset.X.shape[1])]
        dataset = replace(dataset, X=pd.DataFrame(dataset.X, columns=columns), roles=dict.fromkeys(columns, "numeric"))
    expected = split(copy.deepcopy(dataset), 0.2, 0.25, 7, folds)
    buffer = dataset.X
    splits = split_rows(dataset, 0.2, 0.25, 7, folds)
    if kind == "table":
        pd.testing.assert_frame_equal(splits.X_rest, expected.X_rest)
        pd.testing.assert_frame_equal(splits._X_test, expected._X_test)
    else:
        _same_splits(splits, expected)
    assert len(splits.dataset.X) == 0 and splits.dataset.X.shape[1:] == dataset.X.shape[1:]
    assert splits.dataset.name == dataset.name and splits.dataset.classes == dataset.classes
    if kind in ("array", "given test split", "int"):  # views of the loaded buffer, not copies beside it
        assert np.shares_memory(splits.X_rest, buffer)
        assert np.shares_memory(splits._X_test, buffer) == (kind != "given test split")


@pytest.mark.parametrize("scale", ["minmax", "standard", "none"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.uint8])
@pytest.mark.parametrize("features", [1, 9, 33, 97])  # a standard scaler fits 32 columns at a time, never 1 alone
def test_fit_rows_and_scaled_rows_are_fit_and_transform_of_the_gathered_rows(scale, dtype, features):
    rng = np.random.default_rng(features)
    X = (rng.random((5000, features)) * 200 - (0 if dtype == np.uint8 else 100)).astype(dtype)
    X[:, -1] = 7  # a constant column (scale 1)
    if features > 2:
        X[:, 1] = X[0, 1] + (np.arange(5000) % 2) * 1e-3 * (dtype in (np.float32, np.float64))  # nearly constant
    index = rng.permutation(5000)[:3700]
    expected = Preprocessor.fit(X[index], scale)
    fitted = fit_rows(X, index, scale)
    assert fitted.to_dict() == expected.to_dict()
    for a, b in ((fitted.scale.mul, expected.scale.mul), (fitted.scale.add, expected.scale.add)):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    scaled = scaled_rows(fitted, X, index)
    assert scaled.dtype == np.float32 and scaled.tobytes() == expected.transform(X[index]).tobytes()
    assert scaled_rows(fitted, X).tobytes() == expected.transform(X).tobytes()
    assert rows_range(X, index) == (float(np.min(X[index])), float(np.max(X[index])))


def test_released_trial_data_is_made_again_the_same_bit_for_bit():
    dataset = _pixels()
    splits = split_rows(dataset, 0.2, 0.25, 0)
    data = TrialData.for_fold(splits, 0, "minmax")
    X_train, X_val = data.X_train.copy(), data.X_val.copy()
    data.release()
    assert "X_train" not in vars(data) and data.n_features == 64
    pickled = pickle.dumps(data)  # by value (made again first), without the splits it came from
    assert len(pickled) < 1.2 * (X_train.nbytes + X_val.nbytes)
    restored = pickle.loads(pickled)
    assert np.array_equal(restored.X_train, X_train) and restored.source is None
    assert data.X_train.tobytes() == X_train.tobytes() and data.X_val.tobytes() == X_val.tobytes()
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        data.nothing  # noqa: B018
    held = TrialData(X_train, data.y_train, X_val, data.y_val, "classification", 4)  # no source: kept
    held.release()
    assert held.X_train is X_train


def _traced_peak(function, *args):
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = function(*args)
        return result, tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()


def test_splitting_and_scaling_copy_no_raw_rows():
    TrialData.for_fold(split_rows(_pixels(100, 100), 0.2, 0.25, 0), 0, "minmax")  # imports, outside the trace
    dataset = _pixels(20_000, 100)
    nbytes = dataset.X.nbytes
    splits, peak = _traced_peak(split_rows, dataset, 0.2, 0.25, 0)
    assert peak < 0.25 * nbytes  # the rows move within their buffer, with a few arrays of row positions (before: 1x)
    data, peak = _traced_peak(TrialData.for_fold, splits, 0, "minmax")
    assert peak < 1.1 * nbytes  # the scaled training and validation rows (0.8), slices of rows (before: 2.4x)
    assert data.X_train.nbytes + data.X_val.nbytes == pytest.approx(0.8 * nbytes, rel=0.01)


def test_the_refit_holds_no_copy_of_the_searchs_rows(tmp_path, monkeypatch):
    import tuning.runner

    X = _pixels(20000, 100).X
    np.savez(tmp_path / "pixels.npz", X=X, y=np.arange(20000) % 3)
    experiment = load_experiment(None, [f"data.dataset='{tmp_path / 'pixels.npz'}'", "train.epochs=1",
                                        "search.repeats=1", "search.n_jobs=1",
                                        "search.space={lr = [0.1], hidden_units = [4], batch_size = [256]}"])
    prep = prepare(experiment, tmp_path / "exp")
    assert len(prep.splits.dataset.X) == 0
    assert prep.data_record == {**data_record(experiment, load_dataset(str(tmp_path / "pixels.npz"))),
                                "validation_rows": len(prep.data[0].y_val)}
    peaks = []

    def traced_finalize(*args):
        best, peak = _traced_peak(finalize, *args)
        peaks.append(peak)
        return best

    monkeypatch.setattr(tuning.runner, "finalize", traced_finalize)
    tuning.runner.run_experiment(experiment, prepared=prep, render_report=False)
    # What finalize allocates: the refit's scaled rows (0.8 of the data), slices of rows, the test's scaled 0.2.
    assert len(peaks) == 1 and peaks[0] < 1.25 * X.nbytes  # before: 2.4x (a raw copy, and 8192-row float64 slices)
    assert "X_train" not in vars(prep.data[0])
    assert prep.data[0].X_train.shape == (len(prep.data[0].y_train), 100)  # made again when asked for
