"""The experiment file: read TOML, apply `--set` overrides, fill defaults, validate with clear errors.

Every key has a default, so `python main.py` needs no file. Validation happens here, before
any data is loaded or any file written, and names the key, what was expected and what was given.
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, shown
from .schema import (
    BUILTIN_DATASETS,
    DEFAULTS,
    EXECUTION_KEYS,
    RULES,
    check_size,
    check_space,
    check_value,
    check_warmup,
    unknown_key,
)

MAX_CONFIG_BYTES = 1 << 20  # an experiment file is a few hundred bytes; anything this large is not one


FRAME_DATASET = "DataFrame"  # data.dataset of an experiment whose data is a pandas DataFrame handed in from Python


@dataclass(frozen=True)
class Experiment:
    """A validated, fully resolved experiment: every key present (and the DataFrame it runs on, if any).

    Make one with `Experiment.from_dict({...})` (the experiment file's tables as dicts) or
    `Experiment.from_toml(path)`; every key has a default, and a bad one raises ConfigError naming it.
    """

    config: dict
    frame: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def from_dict(cls, settings: dict) -> Experiment:
        """An experiment from a dict shaped as the experiment file (data.dataset may be a pandas DataFrame)."""
        if not isinstance(settings, dict):
            raise ConfigError(f"config: expected a dict of the experiment file's tables, got {type(settings).__name__}")
        data = settings.get("data")
        frame = data.get("dataset") if isinstance(data, dict) else None
        if frame is not None and not isinstance(frame, str):
            if not hasattr(frame, "columns") or not hasattr(frame, "iloc"):
                raise ConfigError(f"config: data.dataset must be a name, a path or a pandas DataFrame, got "
                                  f"{type(frame).__name__}")
            settings = {**settings, "data": {**data, "dataset": FRAME_DATASET}}
        else:
            frame = None
        config = copy.deepcopy(DEFAULTS)
        _merge(config, copy.deepcopy(settings))
        return _validated(config, frame)

    @classmethod
    def from_toml(cls, path: str | os.PathLike, overrides: list[str] = ()) -> Experiment:
        """An experiment from a TOML file (and `section.key=value` overrides)."""
        return load_experiment(path, overrides)

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
            raise unknown_key(dotted, [f"{prefix}{k}" for k in base])
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
    return _validated(config)


def _validated(config: dict, frame=None) -> Experiment:
    """Every check of a merged config (all keys present), the default name filled in."""
    _check_all(config)
    if not config["name"]:
        config["name"] = "dataframe" if frame is not None else default_name(config["data"]["dataset"])
    check_space(config)
    check_size(config)
    check_warmup(config)
    if config["search"]["strategy"] == "halving" and config["train"]["early_stopping"]:
        raise ConfigError("config: train.early_stopping must be 0 with strategy = \"halving\" "
                          "(successive halving already stops the weaker configurations)")
    data = config["data"]
    if not 0 < data["test_size"] + data["val_size"] < 1:
        raise ConfigError(f"config: data.test_size + data.val_size must be in (0, 1), "
                          f"got {data['test_size']} + {data['val_size']}")
    return Experiment(config, frame)
