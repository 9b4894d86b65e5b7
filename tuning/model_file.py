"""The runner's metadata in a model.npz (`refit._metadata`), checked against the network before `predict` uses it.

A field that disagrees with the network would not fail loudly later: a short `scale` vector
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
from .preprocess import Affine, TargetScale

TASKS = {"classification": SoftmaxCrossEntropy, "regression": MeanSquaredError}  # the losses network.py builds
FIELDS = ("task", "classes", "image_shape", "feature_range", "scale", "target_scale")


@dataclass(frozen=True)
class RunnerMetadata:
    """What `predict` needs besides the network, every field checked."""

    task: str
    scale: Affine
    classes: list[str]
    image_shape: tuple[int, int] | None
    feature_range: tuple[float, float]
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


def _scale(path: Path, value, n_in: int) -> Affine:
    if not isinstance(value, dict):
        _Field(path, "scale").fail("expected {'mul': [...], 'add': [...]}")
    mul, add = (_numbers(_Field(path, f"scale.{key}"), value.get(key), n_in) for key in ("mul", "add"))
    return Affine(mul, add)


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


def _feature_range(path: Path, value) -> tuple[float, float]:
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
    if "scale" not in meta or "task" not in meta:
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
    return RunnerMetadata(task, _scale(path, meta["scale"], model.n_in),
                          _classes(path, meta["classes"], task, model.n_out),
                          _image_shape(path, meta["image_shape"], model.n_in),
                          _feature_range(path, meta["feature_range"]),
                          _target_scale(path, meta["target_scale"], task, model.n_out))
