"""The experiment file: read TOML, apply `--set` overrides, fill defaults, validate with clear errors.

Every key has a default, so `python main.py` needs no file. Validation happens here, before
any data is loaded or any file written, and names the key, what was expected and what was given.
"""

from __future__ import annotations

import copy
import difflib
import math
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from .errors import UserError

BUILTIN_DATASETS = ("digits", "iris", "wine", "breast_cancer", "diabetes")
ACTIVATION_NAMES = ("relu", "leaky_relu", "sigmoid", "tanh")
OPTIMIZER_NAMES = ("sgd", "adam", "rmsprop")

DEFAULTS: dict[str, Any] = {
    "name": "digits",
    "seed": 0,
    "data": {
        "dataset": "digits",
        "target": "",  # CSV label column; empty = the first column
        "task": "auto",  # auto | classification | regression
        "test_size": 0.2,
        "val_size": 0.2,
        "scale": "minmax",
    },
    "train": {
        "epochs": 30,
        "lr": 0.05,
        "batch_size": 32,
        "hidden_units": 64,
        "hidden_layers": 1,
        "activation": "relu",
        "optimizer": "sgd",
        "momentum": 0.9,
        "weight_decay": 0.0,
        "dropout": 0.0,
        "early_stopping": 0,
    },
    "search": {
        "strategy": "grid",
        "repeats": 2,
        "n_trials": 20,
        "n_jobs": -1,
        "backend": "loky",
        "scheduler": "",
        "select": "mean",
        "eta": 3,
        "min_epochs": 3,
        "space": {
            "lr": [0.01, 0.05, 0.1],
            "batch_size": [16, 32, 64],
            "hidden_units": [32, 64, 128],
        },
    },
}

# Keys that change how an experiment runs, not what it computes: they may differ on resume.
EXECUTION_KEYS = ("n_jobs", "backend", "scheduler")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _int_at_least(low: int):
    return (_is_int, lambda v: v >= low, f"an integer >= {low}")


def _number(check, text):
    return (_is_number, check, text)


def _choice(*options):
    return (lambda v: isinstance(v, str), lambda v: v in options, "one of " + ", ".join(repr(o) for o in options))


# key -> (type test, range test, what is expected)
RULES: dict[str, tuple] = {
    "name": (lambda v: isinstance(v, str), lambda v: re.fullmatch(r"[A-Za-z0-9_-]+", v) is not None,
             "a folder name of letters, digits, '-' and '_'"),
    "seed": _int_at_least(0),
    "data.dataset": (lambda v: isinstance(v, str), lambda v: v != "", "a built-in name "
                     f"({', '.join(BUILTIN_DATASETS)}) or a path to a .csv, .npz or MNIST folder"),
    "data.target": (lambda v: isinstance(v, str), lambda v: True, "a column name (or empty for the first)"),
    "data.task": _choice("auto", "classification", "regression"),
    "data.test_size": _number(lambda v: 0 < v < 1, "a number in (0, 1)"),
    "data.val_size": _number(lambda v: 0 < v < 1, "a number in (0, 1)"),
    "data.scale": _choice("minmax", "standard", "none"),
    "train.epochs": _int_at_least(1),
    "train.lr": _number(lambda v: v > 0, "a number > 0"),
    "train.batch_size": _int_at_least(1),
    "train.hidden_units": _int_at_least(1),
    "train.hidden_layers": _int_at_least(0),
    "train.activation": _choice(*ACTIVATION_NAMES),
    "train.optimizer": _choice(*OPTIMIZER_NAMES),
    "train.momentum": _number(lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "train.weight_decay": _number(lambda v: v >= 0, "a number >= 0"),
    "train.dropout": _number(lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "train.early_stopping": _int_at_least(0),
    "search.strategy": _choice("grid", "random", "halving"),
    "search.repeats": _int_at_least(1),
    "search.n_trials": _int_at_least(1),
    "search.n_jobs": (_is_int, lambda v: v != 0, "a non-zero integer (-1 = all cores)"),
    "search.backend": _choice("loky", "dask"),
    "search.scheduler": (lambda v: isinstance(v, str), lambda v: True, "a scheduler address such as "
                         "'tcp://host:8786' (empty = a local cluster)"),
    "search.select": _choice("mean", "one_se"),
    "search.eta": _int_at_least(2),
    "search.min_epochs": _int_at_least(1),
}
INTEGER_TRAIN_KEYS = tuple(k for k, (test, _, _) in RULES.items() if k.startswith("train.") and test is _is_int)


def _type_name(value) -> str:
    return type(value).__name__ if not isinstance(value, str) else "string"


def check_value(key: str, value) -> None:
    """Raise UserError unless `value` is valid for the dotted `key` (e.g. 'train.lr')."""
    is_type, in_range, expected = RULES[key]
    if not is_type(value) or not in_range(value):
        raise UserError(f"config: {key} must be {expected}, got {value!r} ({_type_name(value)})")


def _unknown(key: str, known) -> UserError:
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], [k.rsplit(".", 1)[-1] for k in known], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return UserError(f"config: unknown key {key!r}{hint}; expected one of {', '.join(known)}")


@dataclass(frozen=True)
class Experiment:
    """A validated, fully resolved experiment: every key present."""

    config: dict

    @property
    def name(self) -> str:
        return self.config["name"]

    @property
    def seed(self) -> int:
        return self.config["seed"]

    @property
    def data(self) -> dict:
        return self.config["data"]

    @property
    def train(self) -> dict:
        return self.config["train"]

    @property
    def search(self) -> dict:
        return self.config["search"]

    @property
    def space(self) -> dict:
        return self.config["search"]["space"]

    def comparable(self) -> dict:
        """The config without execution-only keys: two runs that agree here compute the same results."""
        config = copy.deepcopy(self.config)
        for key in EXECUTION_KEYS:
            config["search"].pop(key)
        return config

    def to_toml(self) -> str:
        return tomli_w.dumps(self.config)


def _merge(base: dict, update: dict, prefix: str = "") -> None:
    """Merge `update` into `base` in place, refusing keys that `base` does not have."""
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if dotted == "search.space":
            if not isinstance(value, dict):
                raise UserError(f"config: search.space must be a table of train keys, got {value!r}")
            base[key] = copy.deepcopy(value)  # a given space replaces the default one
        elif key not in base:
            known = [f"{prefix}{k}" for k in base]
            raise _unknown(dotted, known)
        elif isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise UserError(f"config: [{dotted}] must be a table, got {value!r}")
            _merge(base[key], value, f"{dotted}.")
        else:
            base[key] = value


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split `section.key=value` into the key path and its TOML value (a bare word is a string)."""
    key, sep, raw = text.partition("=")
    path = key.strip().split(".")
    if not sep or not all(re.fullmatch(r"[A-Za-z0-9_]+", part) for part in path):
        raise UserError(f"--set: expected section.key=value (e.g. train.epochs=10), got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # `--set data.dataset=iris` without TOML quotes
    return path, value


def _override(config: dict, text: str) -> None:
    path, value = parse_override(text)
    update: dict = {}
    node = update
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    if path[:2] == ["search", "space"] and len(path) == 3:
        config["search"]["space"][path[2]] = value  # add or replace one searched key
        return
    _merge(config, update)


def _check_space(config: dict) -> None:
    space, strategy = config["search"]["space"], config["search"]["strategy"]
    train_keys = list(config["train"])
    for key, values in space.items():
        dotted = f"train.{key}"
        if key not in config["train"]:
            raise _unknown(f"search.space.{key}", [f"search.space.{k}" for k in train_keys])
        if isinstance(values, dict):
            if strategy == "grid":
                raise UserError(f"config: search.space.{key} is a range {values!r}, but grid search needs a list "
                                "of values (use strategy = \"random\" or \"halving\" for ranges)")
            _check_range(key, values)
        elif isinstance(values, list):
            if not values:
                raise UserError(f"config: search.space.{key} must be a non-empty list of values, got []")
            for value in values:
                check_value(dotted, value)
            if len({repr(v) for v in values}) != len(values):
                raise UserError(f"config: search.space.{key} lists a value twice: {values!r}")
        else:
            raise UserError(f"config: search.space.{key} must be a list of values or a range "
                            f"{{low, high, log}}, got {values!r}")


def _check_range(key: str, spec: dict) -> None:
    where = f"search.space.{key}"
    extra = set(spec) - {"low", "high", "log"}
    if extra or "low" not in spec or "high" not in spec:
        raise UserError(f"config: {where} must be a range {{low = ..., high = ..., log = true|false}}, got {spec!r}")
    low, high, log = spec["low"], spec["high"], spec.get("log", False)
    if not isinstance(log, bool):
        raise UserError(f"config: {where}.log must be true or false, got {log!r}")
    check_value(f"train.{key}", low)
    check_value(f"train.{key}", high)
    if not low < high:
        raise UserError(f"config: {where} needs low < high, got low={low!r}, high={high!r}")
    if log and low <= 0:
        raise UserError(f"config: {where} with log = true needs low > 0, got {low!r}")


def _check_all(config: dict, prefix: str = "") -> None:
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if dotted == "search.space":
            continue
        if isinstance(value, dict):
            _check_all(value, f"{dotted}.")
        else:
            check_value(dotted, value)


def load_experiment(path: str | os.PathLike | None = None, overrides: list[str] = ()) -> Experiment:
    """Read the TOML file at `path` (None = defaults only), apply `section.key=value` overrides, validate."""
    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UserError(f"config: cannot read {str(path)!r}: {exc.strerror or exc}") from None
        try:
            _merge(config, tomllib.loads(text))
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"config: {path} is not valid TOML: {exc}") from None
    for text in overrides:
        _override(config, text)
    _check_all(config)
    _check_space(config)
    if config["search"]["strategy"] == "halving" and config["train"]["early_stopping"]:
        raise UserError("config: train.early_stopping must be 0 with strategy = \"halving\" "
                        "(successive halving already stops the weaker configurations)")
    data = config["data"]
    if not 0 < data["test_size"] + data["val_size"] < 1:
        raise UserError(f"config: data.test_size + data.val_size must be in (0, 1), "
                        f"got {data['test_size']} + {data['val_size']}")
    return Experiment(config)

