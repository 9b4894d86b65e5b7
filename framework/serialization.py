"""Save and load models as one .npz file: arrays plus a JSON config entry. Never pickle.

Layout: `__config__` holds JSON (format, dtype, layers, loss, optimizer with its step count,
metrics, the model's fit-seed stream `fit_seeds`, and the open `metadata` dict); `param/<i>`
the weights in layer order; `optimizer/<state>/<i>` the optimizer's per-parameter state, so
training can resume exactly. Files written before `fit_seeds` existed load with the stream
their seed gives.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from . import activations, layers, losses, optimizers
from .model import DTYPES, Model

FORMAT = "numpy-mlp-model"
VERSION = 1
_LAYERS = {cls.__name__: cls for cls in (layers.Dense, layers.Dropout, *activations.ACTIVATIONS.values())}
_LOSSES = {cls.__name__: cls for cls in losses.LOSSES.values()}
_OPTIMIZERS = {cls.__name__: cls for cls in optimizers.OPTIMIZERS.values()}


def _spec(obj) -> dict:
    return {"class": type(obj).__name__, "config": obj.get_config()}


def _seeds_to_json(seeds: np.random.SeedSequence) -> dict:
    """A SeedSequence as plain JSON: what `SeedSequence(...)` needs to continue where it is."""
    return {"entropy": seeds.entropy, "spawn_key": list(seeds.spawn_key), "pool_size": seeds.pool_size,
            "n_children_spawned": seeds.n_children_spawned}


def _seeds_from_json(spec, path) -> np.random.SeedSequence:
    """The SeedSequence `_seeds_to_json` wrote; a damaged entry raises ValueError."""
    def whole(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    if (not isinstance(spec, dict) or not whole(spec.get("entropy")) or not isinstance(spec.get("spawn_key"), list)
            or not all(whole(k) for k in spec["spawn_key"]) or not whole(spec.get("pool_size"))
            or not whole(spec.get("n_children_spawned"))):
        raise ValueError(f"load_model: {path} has a damaged config: fit_seeds {spec!r}")
    try:
        return np.random.SeedSequence(spec["entropy"], spawn_key=tuple(spec["spawn_key"]),
                                      pool_size=spec["pool_size"], n_children_spawned=spec["n_children_spawned"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"load_model: {path} has a damaged config: fit_seeds ({exc})") from None


def save_model(model: Model, path: str | os.PathLike) -> None:
    """Write `model` to `path` atomically (a temporary file renamed into place)."""
    config = {
        "format": FORMAT,
        "version": VERSION,
        "dtype": str(model.dtype),
        "seed": model.seed,
        "layers": [_spec(layer) for layer in model.layers],
        "loss": _spec(model.loss) if model.loss is not None else None,
        "optimizer": None,
        "metrics": model.metrics,
        "fit_seeds": _seeds_to_json(model._fit_seeds),  # fit() without a seed draws from it: keep its place
        "metadata": model.metadata,
    }
    arrays = {f"param/{i}": p for i, p in enumerate(model.parameters())}
    if model.optimizer is not None:
        config["optimizer"] = {**_spec(model.optimizer), "iterations": model.optimizer.iterations}
        for name, state in model.optimizer.state().items():
            arrays.update({f"optimizer/{name}/{i}": a for i, a in enumerate(state)})
    try:
        text = json.dumps(config, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"save: model.metadata must hold JSON-serialisable, finite values ({exc})") from None
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, __config__=np.array(text), **arrays)
    os.replace(tmp, path)


def _build(registry: dict, spec, what: str, path):
    if (not isinstance(spec, dict) or not isinstance(spec.get("class"), str) or spec["class"] not in registry
            or not isinstance(spec.get("config"), dict)):
        raise ValueError(f"load_model: {path} has an invalid {what} entry {spec!r}; "
                         f"expected one of {', '.join(registry)}")
    try:
        return registry[spec["class"]](**spec["config"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"load_model: {path} has an invalid {what} configuration: {exc}") from None


def _compile(model: Model, config: dict, arrays: dict, path) -> None:
    """Compile `model` with the saved loss and optimizer, and put the optimizer's saved state back."""
    opt_spec = config.get("optimizer")
    optimizer = None if opt_spec is None else _build(_OPTIMIZERS, opt_spec, "optimizer", path)
    model.compile(_build(_LOSSES, config["loss"], "loss", path), optimizer, config.get("metrics"))
    if optimizer is None:
        return
    params = model.parameters()
    state = {name: [arrays.get(f"optimizer/{name}/{i}") for i in range(len(params))] for name in optimizer.state()}
    if any(a is None or a.shape != p.shape for arrs in state.values() for a, p in zip(arrs, params)):
        raise ValueError(f"load_model: {path} is damaged: optimizer state is incomplete or misshapen")
    iterations = opt_spec.get("iterations", 0)
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"load_model: {path} has a damaged config: optimizer iterations {iterations!r}")
    optimizer.load_state(state, iterations)


def load_model(path: str | os.PathLike) -> Model:
    """Read a model written by `Model.save`; a wrong or damaged file raises ValueError."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"load_model: no such file {str(path)!r}")
    expected = "expected a .npz file written by Model.save"
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):  # a plain .npy: an array, not a context manager
            raise ValueError("it holds a single array")
        with data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"load_model: {path} is not a model file ({expected}): {exc}") from None
    try:
        config = json.loads(str(arrays.pop("__config__")))
    except (KeyError, ValueError):
        raise ValueError(f"load_model: {path} is not a model file ({expected}): no model config inside") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"load_model: {path} is not a model file ({expected}): unknown format")
    if config.get("version") != VERSION:
        raise ValueError(f"load_model: {path} has format version {config.get('version')!r}; "
                         f"this version reads {VERSION}")
    if config.get("dtype") not in DTYPES or not isinstance(config.get("layers"), list):
        raise ValueError(f"load_model: {path} has a damaged config (dtype or layers missing)")

    model = Model([_build(_LAYERS, spec, "layer", path) for spec in config["layers"]],
                  seed=config.get("seed"), dtype=config["dtype"])
    params = model.parameters()
    weights = [arrays.get(f"param/{i}") for i in range(len(params))]
    if any(w is None or w.shape != p.shape for w, p in zip(weights, params)):
        raise ValueError(f"load_model: {path} is damaged: its weight arrays do not match its layers")
    model.set_weights(weights)
    if "fit_seeds" in config:
        model._fit_seeds = _seeds_from_json(config["fit_seeds"], path)
    if config.get("loss") is not None:
        _compile(model, config, arrays, path)
    metadata = config.get("metadata", {})
    model.metadata = metadata if isinstance(metadata, dict) else {}
    return model
