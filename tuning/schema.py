"""The experiment file's schema: every key's default and the rule its value must satisfy.

`DEFAULTS` is the whole experiment (so `python main.py` needs no file); `RULES` maps each dotted
key to (type test, range test, what is expected), which `check_value` turns into one clear error.
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Any

from .errors import ConfigError, shown

BUILTIN_DATASETS = ("digits", "iris", "wine", "breast_cancer", "diabetes")
ACTIVATION_NAMES = ("relu", "leaky_relu", "sigmoid", "tanh")
OPTIMIZER_NAMES = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULE_NAMES = ("constant", "step", "exponential", "cosine", "plateau")
INIT_NAMES = ("auto", "he", "xavier", "normal")

DEFAULTS: dict[str, Any] = {
    "name": "",  # the results folder's name; empty = the dataset's (results/penguins for penguins.csv)
    "seed": 0,
    "data": {
        "dataset": "digits",
        "target": "",  # CSV label column; empty = the first column
        "task": "auto",  # auto | classification | regression
        "test_size": 0.2,
        "val_size": 0.2,  # of what is left after the test split (holdout validation, folds = 0)
        "folds": 0,  # 0 = one holdout validation split; k = k-fold cross-validation of the non-test rows
        "scale": "minmax",
        "categorical": [],  # CSV columns to one-hot encode although they hold numbers
        "drop": [],  # CSV columns to leave out
        "missing": "impute",  # impute | drop_rows | error: what a CSV's empty cells become
    },
    "train": {
        "epochs": 30,
        "lr": 0.05,
        "batch_size": 32,
        "hidden_units": 64,
        "hidden_layers": 1,
        "hidden": [],  # per-layer widths, e.g. [128, 64]; empty = hidden_units x hidden_layers
        "activation": "relu",
        "init": "auto",  # auto (he for relu-like, xavier for sigmoid and tanh) | he | xavier | normal
        "batchnorm": False,  # Dense -> BatchNorm -> activation in every hidden layer
        "optimizer": "sgd",
        "momentum": 0.9,  # sgd
        "beta1": 0.9,  # adam and adamw
        "beta2": 0.999,  # adam and adamw
        "weight_decay": 0.0,  # L2 added to the gradient; decoupled for adamw
        "clip_norm": 0.0,  # clip the gradients' global norm to this (0 = off)
        "dropout": 0.0,
        "label_smoothing": 0.0,  # classification only
        "schedule": "constant",  # constant | step | exponential | cosine | plateau
        "warmup_epochs": 0,  # a linear warm-up in front of the schedule
        "step_size": 10,  # step: epochs between decays
        "gamma": 0.5,  # step, exponential: the decay factor; plateau: the lr's factor when it stalls
        "min_lr": 0.0,  # cosine: the lr it anneals to; plateau: the lowest lr
        "plateau_patience": 5,  # plateau: epochs without improvement before the lr drops
        "early_stopping": 0,
    },
    "search": {
        "strategy": "grid",  # grid | random | tpe | halving
        "repeats": 2,
        "n_trials": 20,  # configurations of random, tpe (and halving over ranges or with sampler = "tpe")
        "batch": 8,  # tpe: configurations proposed at a time, told back before the next batch
        "sampler": "auto",  # halving's first rung: auto (the grid, or random draws over ranges) | tpe
        "n_jobs": -1,
        "backend": "loky",
        "scheduler": "",
        "select": "mean",
        "metric": "",  # what selection ranks by; empty = accuracy (classification), rmse (regression)
        "eta": 3,
        "min_epochs": 3,
        "space": {
            "lr": [0.01, 0.05, 0.1],
            "batch_size": [16, 32, 64],
            "hidden_units": [32, 64, 128],
        },
    },
}

MAX_TRIALS = 1_000_000  # candidates x repeats: more would take days and its specs alone gigabytes
MAX_LAYERS, MAX_WIDTH = 32, 65_536  # an MLP's hidden layers and widths: beyond these, memory runs out first

# Settings that only mean something for some choices of others: where a setting does not apply, a grid does
# not multiply it, a trial's identity leaves it out, and runs.csv leaves its cell empty.
CONDITIONS = {
    "momentum": lambda t: t["optimizer"] == "sgd",
    "beta1": lambda t: t["optimizer"] in ("adam", "adamw"),
    "beta2": lambda t: t["optimizer"] in ("adam", "adamw"),
    "step_size": lambda t: t["schedule"] == "step",
    "gamma": lambda t: t["schedule"] in ("step", "exponential", "plateau"),
    "min_lr": lambda t: t["schedule"] in ("cosine", "plateau"),
    "plateau_patience": lambda t: t["schedule"] == "plateau",
    "hidden_units": lambda t: not t["hidden"],
    "hidden_layers": lambda t: not t["hidden"],
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


def _names(what: str):
    return (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), lambda v: len(set(v)) == len(v),
            f"a list of {what}, each once")


def _choice(*options):
    return (lambda v: isinstance(v, str), lambda v: v in options, "one of " + ", ".join(repr(o) for o in options))


# key -> (type test, range test, what is expected)
RULES: dict[str, tuple] = {
    "name": (lambda v: isinstance(v, str), lambda v: re.fullmatch(r"[A-Za-z0-9_-]*", v) is not None,
             "a folder name of letters, digits, '-' and '_' (empty: the dataset's name)"),
    "seed": _int_at_least(0),
    "data.dataset": (lambda v: isinstance(v, str), lambda v: v != "", "a built-in name "
                     f"({', '.join(BUILTIN_DATASETS)}) or a path to a .csv, .npz or MNIST folder"),
    "data.target": (lambda v: isinstance(v, str), lambda v: True, "a column name (or empty for the first)"),
    "data.task": _choice("auto", "classification", "regression"),
    "data.test_size": _number(lambda v: 0 < v < 1, "a number in (0, 1)"),
    "data.val_size": _number(lambda v: 0 < v < 1, "a number in (0, 1)"),
    "data.folds": (_is_int, lambda v: v == 0 or 2 <= v <= 100, "0 (a holdout split) or a number of folds in 2..100"),
    "data.scale": _choice("minmax", "standard", "none"),
    "data.categorical": _names("column names"),
    "data.drop": _names("column names"),
    "data.missing": _choice("impute", "drop_rows", "error"),
    "train.epochs": _int_at_least(1),
    "train.lr": _number(lambda v: v > 0, "a number > 0"),
    "train.batch_size": _int_at_least(1),
    "train.hidden_units": _int_at_least(1),
    "train.hidden_layers": _int_at_least(0),
    "train.hidden": (lambda v: isinstance(v, list) and all(_is_int(w) for w in v),
                     lambda v: len(v) <= MAX_LAYERS and all(1 <= w <= MAX_WIDTH for w in v),
                     f"a list of at most {MAX_LAYERS} layer widths, integers in 1..{MAX_WIDTH} (e.g. [128, 64])"),
    "train.activation": _choice(*ACTIVATION_NAMES),
    "train.init": _choice(*INIT_NAMES),
    "train.batchnorm": (lambda v: isinstance(v, bool), lambda v: True, "true or false"),
    "train.optimizer": _choice(*OPTIMIZER_NAMES),
    "train.momentum": _number(lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "train.beta1": _number(lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "train.beta2": _number(lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "train.weight_decay": _number(lambda v: v >= 0, "a number >= 0"),
    "train.clip_norm": _number(lambda v: v >= 0, "a number >= 0 (0 = no clipping)"),
    "train.dropout": _number(lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "train.label_smoothing": _number(lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "train.schedule": _choice(*SCHEDULE_NAMES),
    "train.warmup_epochs": _int_at_least(0),
    "train.step_size": _int_at_least(1),
    "train.gamma": _number(lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "train.min_lr": _number(lambda v: v >= 0, "a number >= 0"),
    "train.plateau_patience": _int_at_least(0),
    "train.early_stopping": _int_at_least(0),
    "search.strategy": _choice("grid", "random", "tpe", "halving"),
    "search.batch": _int_at_least(1),
    "search.sampler": _choice("auto", "tpe"),
    "search.repeats": _int_at_least(1),
    "search.n_trials": _int_at_least(1),
    "search.n_jobs": (_is_int, lambda v: v != 0, "a non-zero integer (-1 = all cores)"),
    "search.backend": _choice("loky", "dask"),
    "search.scheduler": (lambda v: isinstance(v, str), lambda v: True, "a scheduler address such as "
                         "'tcp://host:8786' (empty = a local cluster)"),
    "search.select": _choice("mean", "one_se"),
    "search.metric": _choice("", "accuracy", "balanced_accuracy", "f1", "roc_auc", "loss", "rmse", "mae", "mse", "r2"),
    "search.eta": _int_at_least(2),
    "search.min_epochs": _int_at_least(1),
}
INTEGER_TRAIN_KEYS = tuple(k for k, (test, _, _) in RULES.items() if k.startswith("train.") and test is _is_int)


def unknown_key(key: str, known) -> ConfigError:
    """The error for a key the schema does not have, with the closest known one as a hint."""
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], [k.rsplit(".", 1)[-1] for k in known], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"config: unknown key {shown(key)}{hint}; expected one of {', '.join(known)}")


_TOML_TYPES = {str: "string", bool: "boolean", int: "integer", float: "float", dict: "table", list: "array"}


def type_name(value) -> str:
    """A value's type in TOML's words (string, integer, table, array, ...)."""
    return _TOML_TYPES.get(type(value), type(value).__name__)


def check_value(key: str, value) -> None:
    """Raise ConfigError unless `value` is valid for the dotted `key` (e.g. 'train.lr')."""
    is_type, in_range, expected = RULES[key]
    if not is_type(value) or not in_range(value):
        raise ConfigError(f"config: {key} must be {expected}, got {shown(value)} ({type_name(value)})")


def check_space(config: dict) -> None:
    """search.space: every key a train key, every value a non-empty list of valid values or a valid range."""
    space, strategy = config["search"]["space"], config["search"]["strategy"]
    for key, values in space.items():
        where = f"search.space.{key}"
        if key not in config["train"]:
            raise unknown_key(where, [f"search.space.{k}" for k in config["train"]])
        if isinstance(values, dict):
            if strategy == "grid":
                raise ConfigError(f"config: {where} is a range {shown(values)}, but grid search needs a list "
                                  "of values (use strategy = \"random\", \"tpe\" or \"halving\" for ranges)")
            _check_range(key, values)
        elif isinstance(values, list):
            if not values:
                raise ConfigError(f"config: {where} must be a non-empty list of values, got []")
            for value in values:
                check_value(f"train.{key}", value)
            if key == "hidden" and [] in values:  # its cell in runs.csv would read as "not used"
                raise ConfigError(f"config: {where} lists [] (hidden_units x hidden_layers); write those widths "
                                  f"out instead, e.g. [{config['train']['hidden_units']}]")
            if len({repr(v) for v in values}) != len(values):
                raise ConfigError(f"config: {where} lists a value twice: {shown(values)}")
        else:
            raise ConfigError(f"config: {where} must be a list of values or a range {{low, high, log}}, "
                              f"got {shown(values)}")


def _check_range(key: str, spec: dict) -> None:
    where = f"search.space.{key}"
    extra = set(spec) - {"low", "high", "log"}
    if extra or "low" not in spec or "high" not in spec:
        raise ConfigError(f"config: {where} must be a range {{low = ..., high = ..., log = true|false}}, "
                          f"got {shown(spec)}")
    low, high, log = spec["low"], spec["high"], spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"config: {where}.log must be true or false, got {shown(log)}")
    check_value(f"train.{key}", low)
    check_value(f"train.{key}", high)
    if not low < high:
        raise ConfigError(f"config: {where} needs low < high, got low={low!r}, high={high!r}")
    if log and low <= 0:
        raise ConfigError(f"config: {where} with log = true needs low > 0, got {low!r}")


def space_size(space: dict) -> float:
    """How many distinct configurations a space holds: the grid's size; inf when a range is continuous."""
    size = 1.0
    for key, values in space.items():
        if isinstance(values, list):
            size *= len(values)
        elif f"train.{key}" in INTEGER_TRAIN_KEYS:
            size *= values["high"] - values["low"] + 1
        else:
            return math.inf
    return size


def proposes_candidates(search: dict) -> bool:
    """Whether TPE proposes the configurations as the search goes (strategy tpe; halving with sampler tpe)."""
    return search["strategy"] == "tpe" or (search["strategy"] == "halving" and search["sampler"] == "tpe")


def draws_candidates(search: dict) -> bool:
    """Whether candidates are drawn (random search, halving over a range) or proposed (TPE): `n_trials` of them,
    rather than a grid."""
    ranges = any(isinstance(v, dict) for v in search["space"].values())
    return search["strategy"] == "random" or proposes_candidates(search) or (search["strategy"] == "halving" and
                                                                           ranges)


def _extremes(config: dict, key: str) -> tuple:
    """The smallest and largest value train.`key` takes in the search: its list, its range or its one setting."""
    searched = config["search"]["space"].get(key)
    values = (searched if isinstance(searched, list) else [searched["low"], searched["high"]] if searched
              else [config["train"][key]])
    return min(values), max(values)


def check_warmup(config: dict) -> None:
    """A warm-up must end before training does, or the lr never reaches the value the trial is filed under."""
    longest, shortest = _extremes(config, "warmup_epochs")[1], _extremes(config, "epochs")[0]
    if longest and longest >= shortest:
        raise ConfigError(f"config: train.warmup_epochs = {longest} must be fewer than train.epochs = {shortest}: "
                          "the lr would never reach its set value; shorten the warm-up or train longer")


def check_size(config: dict) -> None:
    """Refuse, before any work, a search that cannot be done: too many trials, or fewer distinct
    configurations than random search is asked to draw."""
    search = config["search"]
    size = space_size(search["space"])
    drawn = draws_candidates(search)
    candidates = search["n_trials"] if drawn else size
    if candidates * search["repeats"] > MAX_TRIALS:
        raise ConfigError(f"config: the search would run {candidates:,.0f} configurations x {search['repeats']} "
                          f"repeats, more than {MAX_TRIALS:,} trials; narrow search.space or lower "
                          "search.n_trials / search.repeats")
    if drawn and size < search["n_trials"]:
        raise ConfigError(f"config: search.space holds only {size:,.0f} distinct configurations, fewer than "
                          f"search.n_trials = {search['n_trials']}; lower n_trials, widen the space, or use "
                          "strategy = \"grid\" to try every one")
