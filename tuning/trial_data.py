"""The scaled training and validation arrays every trial of an experiment trains on.

After `share(folder)` the arrays are memory-mapped .npy files and the object pickles as their
paths, so each local worker maps the same pages instead of receiving a copy per trial.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .datasets import Splits
from .preprocess import Affine, TargetScale

ARRAYS = ("X_train", "y_train", "X_val", "y_val")


@dataclass
class TrialData:
    """Scaled features and targets of the training and validation rows, with what the network needs to know."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    task: str
    n_outputs: int
    files: dict[str, str] = field(default_factory=dict)  # array name -> .npy path once shared

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @classmethod
    def from_splits(cls, splits: Splits, scale: str) -> TrialData:
        """Scale features (and regression targets) with statistics of the training rows only."""
        affine = Affine.fit(scale, splits.X_train)
        if splits.dataset.task == "classification":
            y_train, y_val = splits.y_train, splits.y_val
            n_outputs = len(splits.dataset.classes)
        else:
            target_scale = TargetScale.fit(splits.y_train)
            y_train, y_val = target_scale.apply(splits.y_train), target_scale.apply(splits.y_val)
            n_outputs = 1
        return cls(affine.apply(splits.X_train), y_train, affine.apply(splits.X_val), y_val, splits.dataset.task,
                   n_outputs)

    def share(self, folder: Path) -> TrialData:
        """Write the arrays to `folder` as .npy and return a copy backed by read-only memory maps."""
        folder.mkdir(parents=True, exist_ok=True)
        files = {}
        for name in ARRAYS:
            path = folder / f"{name}.npy"
            np.save(path, getattr(self, name))
            files[name] = str(path)
        return TrialData(**{n: np.load(files[n], mmap_mode="r") for n in ARRAYS}, task=self.task,
                         n_outputs=self.n_outputs, files=files)

    def in_memory(self) -> TrialData:
        """This data with its arrays pickled by value (for workers on other machines, which lack the files)."""
        return TrialData(*(np.asarray(getattr(self, n)) for n in ARRAYS), self.task, self.n_outputs)

    def __getstate__(self) -> dict:
        if not self.files:
            return self.__dict__
        return {k: v for k, v in self.__dict__.items() if k not in ARRAYS}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        for name, path in self.files.items():
            setattr(self, name, np.load(path, mmap_mode="r"))
