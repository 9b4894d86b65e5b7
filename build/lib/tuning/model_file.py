"""The runner's metadata in a model.npz (`refit._metadata`), checked against the network before `predict` uses it.

A field that disagrees with the network would not fail loudly later: a short scale vector
broadcasts, a missing class name shifts every label, a regression without its target scale
prints standardised values. So each field is checked here, and a bad one is a one-line
UserError naming the file and the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from framework import Model
from framework.losses import MeanSquaredError, SoftmaxCrossEntropy

from .errors import UserError
from .preprocess import CATEGORICAL, NUMERIC, Affine, Column, Preprocessor, TargetScale

TASKS = {"classification": SoftmaxCrossEntropy, "regression": MeanSquaredError}  # the losses network.py builds
FIELDS = ("task", "classes", "image_shape", "feature_range", "preprocessor", "target_scale")


@dataclass(frozen=True)
class RunnerMetadata:
    """What `predict` needs besides the network, every field checked."""

    task: str
    preprocessor: Preprocessor
    classes: list[str]
    image_shape: tuple[int, int] | None
    feature_range: tuple[float, float] | None
    target_scale: TargetScale | None


class _Field:
    """Raises a UserError naming the file and the metadata field."""

    def __init__(self, path: Path, name: str) -> None:
        self.path, self.name = path, name

    def fail(self, problem: str):
        raise UserError(f"predict: {self.path} has a bad metadata field '{self.name}': {problem}")


def _number(value) -> bool:
    """A JSON number (not a bool) that is finite as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer beyond float range
        return False


def _numbers(field: _Field, value, n: int) -> np.ndarray:
    if not isinstance(value, list) or len(value) != n:
        got = f"{len(value)} values" if isinstance(value, list) else type(value).__name__
        field.fail(f"expected a list of {n} numbers, got {got}")
    for v in value:
        if not _number(v):
            field.fail(f"expected finite numbers, got {str(v)[:40]!r}")
    return np.asarray(value, dtype=np.float64)


def _scale(path: Path, value, n: int) -> Affine:
    if not isinstance(value, dict):
        _Field(path, "preprocessor.scale").fail("expected {'mul': [...], 'add': [...]}")
    mul, add = (_numbers(_Field(path, f"preprocessor.scale.{key}"), value.get(key), n) for key in ("mul", "add"))
    return Affine(mul, add)


def _column(field: _Field, value) -> Column:
    """One table column: a name, a kind, a fill value of the kind's type, categories for a categorical one."""
    if not isinstance(value, dict) or set(value) != {"name", "kind", "fill", "indicator", "categories"}:
        field.fail(f"expected a column {{name, kind, fill, indicator, categories}}, got {str(value)[:60]}")
    name, kind, fill, categories = value["name"], value["kind"], value["fill"], value["categories"]
    if not isinstance(name, str) or kind not in (NUMERIC, CATEGORICAL) or not isinstance(value["indicator"], bool):
        field.fail(f"a column needs a text name, a kind ({NUMERIC} or {CATEGORICAL}) and a true/false indicator, "
                   f"got {str(value)[:60]}")
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories) or \
            len(set(categories)) != len(categories):
        field.fail(f"column {name!r}: expected distinct text categories, got {str(categories)[:60]}")
    if kind == NUMERIC and (not _number(fill) or categories):
        field.fail(f"numeric column {name!r}: expected a finite fill value and no categories")
    if kind == CATEGORICAL and (not isinstance(fill, str) or not categories or value["indicator"]):
        field.fail(f"categorical column {name!r}: expected a text fill value, categories, and no indicator")
    return Column(name, kind, fill, value["indicator"], list(categories))


def _preprocessor(path: Path, value, n_in: int) -> Preprocessor:
    """The preprocessing, every width checked against the network's input width."""
    field = _Field(path, "preprocessor")
    if not isinstance(value, dict) or set(value) != {"columns", "n_inputs", "scale", "impute"} or \
            not isinstance(value["impute"], bool):
        field.fail("expected {columns, n_inputs, scale, impute}")
    if value["columns"] is None:  # an unnamed array: every feature scaled, by position
        if value["n_inputs"] != n_in:
            field.fail(f"{str(value['n_inputs'])[:20]} inputs for a network with {n_in}")
        return Preprocessor(None, n_in, _scale(path, value["scale"], n_in), value["impute"])
    if not isinstance(value["columns"], list) or not value["columns"]:
        field.fail("expected null or a list of columns")
    columns = [_column(field, c) for c in value["columns"]]
    if len({c.name for c in columns}) != len(columns) or value["n_inputs"] != len(columns):
        field.fail("expected distinct column names, one per input")
    preprocessor = Preprocessor(columns, len(columns), _scale(path, value["scale"], sum(c.kind == NUMERIC for c in
                                                                                         columns)), value["impute"])
    if preprocessor.n_features != n_in:
        field.fail(f"its columns encode {preprocessor.n_features} features for a network with {n_in} inputs")
    return preprocessor


def _classes(path: Path, value, task: str, n_out: int) -> list[str]:
    field = _Field(path, "classes")
    if task == "regression":
        if value not in (None, []):
            field.fail("a regression model has no classes")
        return []
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        field.fail("expected a list of class names (text)")
    if len(value) != n_out:
        field.fail(f"{len(value)} class names for a network with {n_out} outputs")
    return list(value)


def _image_shape(path: Path, value, n_in: int) -> tuple[int, int] | None:
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
        _Field(path, "image_shape").fail(f"expected null or two positive integers, got {str(value)[:40]}")
    if value[0] * value[1] != n_in:
        _Field(path, "image_shape").fail(f"{value[0]}x{value[1]} pixels for a network with {n_in} inputs")
    return value[0], value[1]


def _feature_range(path: Path, value, image_shape) -> tuple[float, float] | None:
    if value is None and image_shape is None:
        return None
    if not isinstance(value, list) or len(value) != 2 or not all(_number(v) for v in value) or value[0] > value[1]:
        _Field(path, "feature_range").fail(f"expected [low, high], finite numbers with low <= high, "
                                           f"got {str(value)[:60]}")
    return float(value[0]), float(value[1])


def _target_scale(path: Path, value, task: str, n_out: int) -> TargetScale | None:
    field = _Field(path, "target_scale")
    if task == "classification":
        if value is not None:
            field.fail("a classification model has no target scale")
        return None
    if n_out != 1:
        _Field(path, "task").fail(f"a regression network has 1 output, this one has {n_out}")
    if (not isinstance(value, dict) or set(value) != {"mean", "std"} or not _number(value["mean"])
            or not _number(value["std"]) or value["std"] <= 0):
        field.fail(f"expected {{'mean': finite, 'std': finite > 0}}, got {str(value)[:60]}")
    return TargetScale(float(value["mean"]), float(value["std"]))


def read_metadata(model: Model, path: str | Path) -> RunnerMetadata:
    """The runner's metadata of `model` (loaded from `path`), every field checked against the network."""
    path, meta = Path(path), model.metadata
    if "preprocessor" not in meta or "task" not in meta:
        raise UserError(f"{path} is a model without the runner's preprocessing metadata; "
                        "expected a model.npz written by `python main.py run`")
    missing = [name for name in FIELDS if name not in meta]
    if missing:
        _Field(path, missing[0]).fail("missing; a model.npz written by `python main.py run` has it")
    task = meta["task"]
    if not isinstance(task, str) or task not in TASKS:
        _Field(path, "task").fail(f"expected one of {', '.join(TASKS)}, got {str(task)[:40]!r}")
    if not isinstance(model.loss, TASKS[task]):
        _Field(path, "task").fail(f"a {task} model is trained with {TASKS[task].__name__}, "
                                  f"this network with {type(model.loss).__name__ if model.loss else 'no loss'}")
    image_shape = _image_shape(path, meta["image_shape"], model.n_in)
    return RunnerMetadata(task, _preprocessor(path, meta["preprocessor"], model.n_in),
                          _classes(path, meta["classes"], task, model.n_out), image_shape,
                          _feature_range(path, meta["feature_range"], image_shape),
                          _target_scale(path, meta["target_scale"], task, model.n_out))
