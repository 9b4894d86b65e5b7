"""The experiment file: read TOML, apply `--set` overrides, fill defaults, validate with clear errors.

Every key has a default, so `python main.py` needs no file. Validation happens here, before
any data is loaded or any file written, and names the key, what was expected and what was given.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UserError
from .schema import DEFAULTS, EXECUTION_KEYS, check_value


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
        import tomli_w

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

