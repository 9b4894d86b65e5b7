"""Save and load models as one .npz file: arrays plus a JSON config entry. Never pickle.

Layout: `__config__` holds JSON (format, dtype, layers, loss, optimizer with its step count,
metrics, the model's fit-seed stream `fit_seeds`, and the open `metadata` dict); `param/<i>`
the weights in layer order; `buffer/<i>` the layers' untrained state (BatchNorm's running mean
and variance) in layer order; `optimizer/<state>/<i>` the optimizer's per-parameter state, so
training can resume exactly. Files written before `fit_seeds` existed load with the stream
their seed gives.

Loading trusts nothing in the file: sizes are read from the .npy headers and compared with the
layers before anything is allocated (`archive`), the config is capped in size and depth, and
weights must be finite in the model's dtype.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from . import activations, layers, losses, optimizers
from .archive import ArchiveError, ArrayArchive
from .model import DTYPES, Model
from .normalization import BatchNorm

FORMAT = "numpy-mlp-model"
VERSION = 1
# Limits on what a file may ask the loader to build; a file past them is refused before anything is allocated.
# 1 GiB of parameters (268M float32) is far beyond any network trained in NumPy here, and loading needs a few
# times that (parameters, gradients, the arrays read, optimizer state): it keeps a hostile file's worst case
# within a few GiB of memory.
MAX_PARAMETER_BYTES = 2**30
# The JSON config: the runner's metadata holds two floats per input feature (~40 characters), so 8 Mi
# characters leave room for ~200k features; parsing that takes well under a second.
MAX_CONFIG_CHARS = 8 * 2**20
MAX_CONFIG_DEPTH = 32  # a written config nests 4 deep; json.loads itself gives up near 1000 (RecursionError)
MAX_LAYERS = 1000
MAX_POOL_SIZE = 1024  # SeedSequence words (NumPy's default is 4); a huge pool would be allocated as given
MAX_ITERATIONS = 2**63 - 1  # optimizer steps: more than any training takes; past float range beta ** t overflows
EXPECTED = "expected a .npz file written by Model.save"
_LAYERS = {cls.__name__: cls for cls in (layers.Dense, layers.Dropout, BatchNorm, *activations.ACTIVATIONS.values())}
_LOSSES = {cls.__name__: cls for cls in losses.LOSSES.values()}
_OPTIMIZERS = {cls.__name__: cls for cls in optimizers.OPTIMIZERS.values()}


def _short(value, limit: int = 80) -> str:
    """repr(value) cut to `limit` characters: a hostile value must not fill an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


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
            or spec["pool_size"] > MAX_POOL_SIZE or not whole(spec.get("n_children_spawned"))):
        raise ValueError(f"load_model: {path} has a damaged config: fit_seeds {_short(spec)}")
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
    arrays.update({f"buffer/{i}": b for i, b in enumerate(model.buffers())})
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
    try:
        with open(tmp, "wb") as f:
            np.savez(f, __config__=np.array(text), **arrays)
        os.replace(tmp, path)
    except BaseException:  # a full disk, Ctrl-C: the old file stays, and no half-written one beside it
        tmp.unlink(missing_ok=True)
        raise


def _build(registry: dict, spec, what: str, path):
    if (not isinstance(spec, dict) or not isinstance(spec.get("class"), str) or spec["class"] not in registry
            or not isinstance(spec.get("config"), dict)):
        raise ValueError(f"load_model: {path} has an invalid {what} entry {_short(spec)}; "
                         f"expected one of {', '.join(registry)}")
    try:
        return registry[spec["class"]](**spec["config"])
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"load_model: {path} has an invalid {what} configuration: {exc}") from None


def _check_tree(value, path) -> None:
    """Refuse JSON nested deeper than MAX_CONFIG_DEPTH or holding NaN/Infinity (save never writes them)."""
    stack = [(value, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_CONFIG_DEPTH:
                raise ValueError(f"load_model: {path} has a config nested deeper than {MAX_CONFIG_DEPTH} levels")
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"load_model: {path} has a config holding a non-finite number ({value})")


def _read_config(archive: ArrayArchive, path) -> dict:
    """The JSON config entry, checked for size and depth before and after parsing, and for format and version."""
    if "__config__" not in archive:
        raise ValueError(f"load_model: {path} is not a model file ({EXPECTED}): no model config inside")
    shape, dtype = archive.header("__config__")
    if dtype.kind == "U" and dtype.itemsize // 4 > MAX_CONFIG_CHARS:
        raise ValueError(f"load_model: {path} has a config of {dtype.itemsize // 4:,} characters; "
                         f"refusing more than {MAX_CONFIG_CHARS:,}")
    text = archive.read("__config__", "U")
    try:
        config = json.loads(str(text[()])) if shape == () else None
    except ValueError:
        config = None
    except RecursionError:
        raise ValueError(f"load_model: {path} has a config nested deeper than {MAX_CONFIG_DEPTH} levels") from None
    if config is None:
        raise ValueError(f"load_model: {path} is not a model file ({EXPECTED}): no model config inside")
    _check_tree(config, path)
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"load_model: {path} is not a model file ({EXPECTED}): unknown format")
    if config.get("version") != VERSION:
        raise ValueError(f"load_model: {path} has format version {_short(config.get('version'))}; "
                         f"this version reads {VERSION}")
    if config.get("dtype") not in DTYPES or not isinstance(config.get("layers"), list):
        raise ValueError(f"load_model: {path} has a damaged config (dtype or layers missing)")
    if len(config["layers"]) > MAX_LAYERS:
        raise ValueError(f"load_model: {path} declares {len(config['layers']):,} layers; refusing more than "
                         f"{MAX_LAYERS}")
    return config


def _layer_arrays(layer, i: int) -> tuple[list, list]:
    """(what, shape) of a registered layer's parameters and of its buffers, in the order its `build` makes them.

    Dense (W, b) and BatchNorm (gamma, beta; running_mean, running_var) are the registered layers
    with arrays; a test checks this against built models for every class in the registry.
    """
    def named(*keys, shape):
        return [(f"{key} of layer {i} {layer!r}", shape) for key in keys]

    if isinstance(layer, layers.Dense):
        return named("W", shape=(layer.n_in, layer.n_out)) + named("b", shape=(layer.n_out,)), []
    if isinstance(layer, BatchNorm):
        return named("gamma", "beta", shape=(layer.n,)), named("running_mean", "running_var", shape=(layer.n,))
    return [], []


def _param_shapes(layer_list: list) -> list[tuple[str, tuple[int, ...]]]:
    """(what, shape) of every parameter the layers will have, in `Model.parameters()` order, without building them."""
    return [entry for i, layer in enumerate(layer_list) for entry in _layer_arrays(layer, i)[0]]


def _buffer_shapes(layer_list: list) -> list[tuple[str, tuple[int, ...]]]:
    """(what, shape) of every buffer the layers will have, in `Model.buffers()` order."""
    return [entry for i, layer in enumerate(layer_list) for entry in _layer_arrays(layer, i)[1]]


def _read_arrays(archive: ArrayArchive, names: list[str], expected: list[tuple[str, tuple]], what: str,
                 dtype: str, path) -> list[np.ndarray]:
    """Members `names`, their headers checked against `expected` (what, shape) before any is read; finite floats.

    Finite in the model's `dtype`: a float64 1e39 is finite, but inf once in a float32 model.
    """
    for name, (role, shape) in zip(names, expected, strict=True):
        found = archive.header(name) if name in archive else None
        if found is None or found[0] != shape or found[1].kind != "f":
            got = "is missing" if found is None else f"holds {found[0]} of {found[1]}"
            raise ValueError(f"load_model: {path} is damaged: {what}: {name} ({role}) {got}; expected {shape} floats")
    arrays = []
    for name in names:
        with np.errstate(over="ignore"):  # an overflow is refused just below, not warned about
            array = archive.read(name, "f").astype(dtype, copy=False)
        if not np.isfinite(array).all():
            raise ValueError(f"load_model: {path} is damaged: {name} holds non-finite values (NaN or inf) "
                             f"as {dtype}")
        arrays.append(array)
    return arrays


def _read_weights(archive: ArrayArchive, layer_list: list, dtype: str, path) -> tuple[list, list]:
    """The weight and buffer arrays for `layer_list`, refused when the layers declare absurd sizes or the arrays
    differ; a running variance must not be negative."""
    expected, buffers = _param_shapes(layer_list), _buffer_shapes(layer_list)
    count = sum(math.prod(shape) for _, shape in expected + buffers)
    if count * np.dtype(dtype).itemsize > MAX_PARAMETER_BYTES:
        raise ValueError(f"load_model: {path} declares {count:,} {dtype} parameters; refusing more than "
                         f"{MAX_PARAMETER_BYTES // 2**30} GiB")
    names = [f"param/{i}" for i in range(len(expected))]
    weights = _read_arrays(archive, names, expected, "its weight arrays do not match its layers", dtype, path)
    names = [f"buffer/{i}" for i in range(len(buffers))]
    state = _read_arrays(archive, names, buffers, "its buffers do not match its layers", dtype, path)
    for name, (role, _), array in zip(names, buffers, state):
        if role.startswith("running_var") and (array < 0).any():
            raise ValueError(f"load_model: {path} is damaged: {name} ({role}) holds a negative variance")
    return weights, state


def _compile(model: Model, config: dict, archive: ArrayArchive, path) -> None:
    """Compile `model` with the saved loss and optimizer, and put the optimizer's saved state back."""
    opt_spec = config.get("optimizer")
    optimizer = None if opt_spec is None else _build(_OPTIMIZERS, opt_spec, "optimizer", path)
    loss = _build(_LOSSES, config["loss"], "loss", path)
    try:
        model.compile(loss, optimizer, config.get("metrics"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"load_model: {path} has a damaged config: {exc}") from None
    if optimizer is None:
        return
    iterations = opt_spec.get("iterations", 0)
    if isinstance(iterations, bool) or not isinstance(iterations, int) or not 0 <= iterations <= MAX_ITERATIONS:
        raise ValueError(f"load_model: {path} has a damaged config: optimizer iterations {_short(iterations)}")
    shapes = [("state of " + what, shape) for what, shape in _param_shapes(model.layers)]
    state = {name: _read_arrays(archive, [f"optimizer/{name}/{i}" for i in range(len(shapes))], shapes,
                                "optimizer state is incomplete or misshapen", str(model.dtype), path)
             for name in optimizer.state()}
    optimizer.load_state(state, iterations)


def load_model(path: str | os.PathLike) -> Model:
    """Read a model written by `Model.save`; a wrong or damaged file raises ValueError.

    It returns the bare network: its `predict` takes the inputs the network was trained on. A model
    whose `metadata["predict_with"]` names a loader (the experiment runner's `tuning.load_predictor`)
    was trained on preprocessed rows; its first `predict` warns that raw rows need that loader.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"load_model: no such file {str(path)!r}")
    try:
        with ArrayArchive(path) as archive:
            return _load(archive, path)
    except ArchiveError as exc:
        raise ValueError(f"load_model: {path} is not a model file ({EXPECTED}): {exc}") from None


def _load(archive: ArrayArchive, path: Path) -> Model:
    config = _read_config(archive, path)
    layer_list = [_build(_LAYERS, spec, "layer", path) for spec in config["layers"]]
    weights, buffers = _read_weights(archive, layer_list, config["dtype"], path)  # before Model allocates anything
    try:
        model = Model(layer_list, seed=config.get("seed"), dtype=config["dtype"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"load_model: {path} has a damaged config: {exc}") from None
    for mine, saved in zip(model.parameters() + model.buffers(), weights + buffers, strict=True):
        mine[...] = saved
    if "fit_seeds" in config:
        model._fit_seeds = _seeds_from_json(config["fit_seeds"], path)
    if config.get("loss") is not None:
        _compile(model, config, archive, path)
    metadata = config.get("metadata", {})
    model.metadata = metadata if isinstance(metadata, dict) else {}
    loader = model.metadata.get("predict_with")
    if isinstance(loader, str):
        model.raw_input_warning = (f"{path} was trained on preprocessed inputs, which Model.predict does not apply: "
                                   f"for raw rows use {loader[:60]}({path.name!r}).predict(rows)")
    return model
