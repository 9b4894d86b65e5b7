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

from .errors import ConfigError, shown
from .schema import BUILTIN_DATASETS, DEFAULTS, EXECUTION_KEYS, INTEGER_TRAIN_KEYS, RULES, check_value

MAX_CONFIG_BYTES = 1 << 20  # an experiment file is a few hundred bytes; anything this large is not one
MAX_TRIALS = 1_000_000  # candidates x repeats: more would take days and its specs alone gigabytes


def _unknown(key: str, known) -> ConfigError:
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], [k.rsplit(".", 1)[-1] for k in known], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"config: unknown key {shown(key)}{hint}; expected one of {', '.join(known)}")


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
        import tomli_w

        return tomli_w.dumps(self.config)


def _merge(base: dict, update: dict, prefix: str = "") -> None:
    """Merge `update` into `base` in place, refusing keys that `base` does not have."""
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if dotted == "search.space":
            if not isinstance(value, dict):
                raise ConfigError(f"config: search.space must be a table of train keys, got {shown(value)}")
            base[key] = copy.deepcopy(value)  # a given space replaces the default one
        elif key not in base:
            raise _unknown(dotted, [f"{prefix}{k}" for k in base])
        elif isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"config: [{dotted}] must be a table, got {shown(value)}")
            _merge(base[key], value, f"{dotted}.")
        else:
            base[key] = value  # checked against its rule once everything is merged


def _toml(text: str, where: str) -> dict:
    """Parse TOML text, every failure (syntax, nesting too deep for the parser) as one ConfigError."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: {where} is not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"config: {where} is nested too deeply to be an experiment file") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split `section.key=value` into the key path and its TOML value (a bare word is a string)."""
    key, sep, raw = text.partition("=")
    path = key.strip().split(".")
    if not sep or not all(re.fullmatch(r"[A-Za-z0-9_]+", part) for part in path):
        raise ConfigError(f"--set: expected section.key=value (e.g. train.epochs=10), got {shown(text)}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # `--set data.dataset=iris` without TOML quotes
    except RecursionError:
        raise ConfigError(f"--set {path[-1]}: the value is nested too deeply") from None
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


def _check_all(config: dict) -> None:
    """Every key against its rule, walking the schema (a table where a value belongs is a wrong value)."""
    for dotted in RULES:
        node = config
        for part in dotted.split("."):
            node = node[part]
        check_value(dotted, node)


def _check_space(config: dict) -> None:
    space, strategy = config["search"]["space"], config["search"]["strategy"]
    for key, values in space.items():
        where = f"search.space.{key}"
        if key not in config["train"]:
            raise _unknown(where, [f"search.space.{k}" for k in config["train"]])
        if isinstance(values, dict):
            if strategy == "grid":
                raise ConfigError(f"config: {where} is a range {shown(values)}, but grid search needs a list "
                                  "of values (use strategy = \"random\" or \"halving\" for ranges)")
            _check_range(key, values)
        elif isinstance(values, list):
            if not values:
                raise ConfigError(f"config: {where} must be a non-empty list of values, got []")
            for value in values:
                check_value(f"train.{key}", value)
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


def draws_candidates(search: dict) -> bool:
    """Whether candidates are random draws (random search; halving over a range) rather than a grid."""
    ranges = any(isinstance(v, dict) for v in search["space"].values())
    return search["strategy"] == "random" or (search["strategy"] == "halving" and ranges)


def _check_size(config: dict) -> None:
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


def _read_text(path: Path) -> str:
    """The experiment file's text; anything but a readable, small UTF-8 file is one ConfigError."""
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config: {shown(str(path))} is {path.stat().st_size:,} bytes, not an experiment "
                              f"file (expected TOML text under {MAX_CONFIG_BYTES:,} bytes)")
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config: cannot read {shown(str(path))}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config: {shown(str(path))} is not UTF-8 text (byte {exc.start}: {exc.reason}); "
                          "expected a TOML file") from None


def default_name(dataset: str) -> str:
    """The results folder's name when none is given: the dataset's (a file's stem, as a folder name)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", Path(dataset).stem if dataset not in BUILTIN_DATASETS else dataset
                  ).strip("_") or "experiment"


def _beside(path: Path, file_config: dict) -> dict:
    """A dataset path in an experiment file means the file's own folder first, then the current one."""
    data = file_config.get("data")
    dataset = data.get("dataset") if isinstance(data, dict) else None
    if isinstance(dataset, str) and dataset not in BUILTIN_DATASETS and not Path(dataset).expanduser().is_absolute():
        beside = path.parent / Path(dataset).expanduser()
        if beside.exists():
            data["dataset"] = str(beside)
    return file_config


def load_experiment(path: str | os.PathLike | None = None, overrides: list[str] = ()) -> Experiment:
    """Read the TOML file at `path` (None = defaults only), apply `section.key=value` overrides, validate."""
    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        _merge(config, _beside(Path(path), _toml(_read_text(Path(path)), shown(str(path)))))
    for text in overrides:
        _override(config, text)
    _check_all(config)
    if not config["name"]:
        config["name"] = default_name(config["data"]["dataset"])
    _check_space(config)
    _check_size(config)
    if config["search"]["strategy"] == "halving" and config["train"]["early_stopping"]:
        raise ConfigError("config: train.early_stopping must be 0 with strategy = \"halving\" "
                          "(successive halving already stops the weaker configurations)")
    data = config["data"]
    if not 0 < data["test_size"] + data["val_size"] < 1:
        raise ConfigError(f"config: data.test_size + data.val_size must be in (0, 1), "
                          f"got {data['test_size']} + {data['val_size']}")
    return Experiment(config)
