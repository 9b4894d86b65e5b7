"""Model files the tests make or damage: runner-like models, edited copies, raw .npy and zip bytes."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from framework import Dense, Model, ReLU
from framework.losses import MeanSquaredError, SoftmaxCrossEntropy
from framework.optimizers import SGD


def runner_metadata(n_in: int, n_out: int, task: str = "classification", image_shape=None) -> dict:
    """Metadata shaped as `tuning.refit._metadata` writes it."""
    return {
        "task": task, "dataset": "made-up",
        "classes": [f"c{i}" for i in range(n_out)] if task == "classification" else [],
        "image_shape": list(image_shape) if image_shape else None,
        "label": "",
        "feature_range": [0.0, 16.0],
        "preprocessor": {"columns": None, "n_inputs": n_in, "scale": {"mul": [1 / 16] * n_in, "add": [0.0] * n_in},
                         "impute": False},
        "target_scale": {"mean": 150.0, "std": 75.0} if task == "regression" else None,
        "params": {"lr": 0.1},
    }


def save_runner_like(path: Path, n_in: int = 64, n_out: int = 10, task: str = "classification", image_shape=None,
                     seed: int = 0) -> Path:
    """A small compiled network with the runner's metadata, saved to `path` (no training: fast)."""
    n_out = 1 if task == "regression" else n_out
    model = Model([Dense(n_in, 16), ReLU(), Dense(16, n_out)], seed=seed)
    model.compile(SoftmaxCrossEntropy() if task == "classification" else MeanSquaredError(), SGD(lr=0.1, momentum=0.9))
    model.metadata = runner_metadata(n_in, n_out, task, image_shape)
    model.save(path)
    return path


def rewrite(path, tmp_path, name, config=None, drop=(), replace=None):
    """A copy of the model file at `path` with its config edited and arrays dropped or replaced."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files if key not in drop}
    if config is not None:
        arrays["__config__"] = np.array(config if isinstance(config, str) else json.dumps(config))
    arrays.update(replace or {})
    out = Path(tmp_path) / name
    np.savez(out, **arrays)
    return out


def config_of(path) -> dict:
    with np.load(path, allow_pickle=False) as data:
        return json.loads(str(data["__config__"]))


def arrays_of(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def npy_bytes(array: np.ndarray | None = None, header: dict | None = None, data: bytes = b"") -> bytes:
    """A .npy stream: `array` as np.save writes it, or a raw `header` dict followed by `data`."""
    if array is not None:
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        return buffer.getvalue()
    text = repr(header).encode("latin1")
    text += b" " * (63 - (10 + len(text)) % 64) + b"\n"  # pad the header to a multiple of 64, as NumPy does
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + data


def write_zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> Path:
    """A zip of raw members (names as given, e.g. 'param/0.npy')."""
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def model_members(config: dict, arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    """The zip members of a model file: the JSON config entry and the arrays, as .npy bytes."""
    members = {"__config__.npy": npy_bytes(np.array(json.dumps(config)))}
    members.update({f"{name}.npy": npy_bytes(array) for name, array in arrays.items()})
    return members
