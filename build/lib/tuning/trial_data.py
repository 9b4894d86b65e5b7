"""The scaled training and validation arrays every trial of an experiment trains on.

After `share(folder)` the arrays are memory-mapped .npy files and the object pickles as their
paths, so each local worker maps the same pages instead of receiving a copy per trial.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .preprocess import Preprocessor, TargetScale
from .splits import Splits

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
    target_std: float = 1.0  # regression: the training targets' std, to report errors in the target's units
    files: dict[str, str] = field(default_factory=dict)  # array name -> .npy path once shared

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @classmethod
    def for_fold(cls, splits: Splits, fold: int, scale: str, missing: str = "impute") -> TrialData:
        """Fold `fold`'s rows (0: the holdout split) preprocessed with statistics of its training rows only."""
        X_train, y_train, X_val, y_val = splits.fold(fold)
        dataset = splits.dataset
        preprocessor = Preprocessor.fit(X_train, scale, dataset.roles, missing)
        X_train, X_val = (preprocessor.transform(X, rows) for X, rows in ((X_train, "training rows"),
                                                                           (X_val, "validation rows")))
        if dataset.task == "classification":
            return cls(X_train, y_train, X_val, y_val, dataset.task, len(dataset.classes))
        target_scale = TargetScale.fit(y_train)
        return cls(X_train, target_scale.apply(y_train), X_val, target_scale.apply(y_val), dataset.task, 1,
                   target_scale.std)

    def share(self, folder: Path) -> TrialData:
        """Write the arrays to `folder` as .npy and return a copy backed by read-only memory maps."""
        folder.mkdir(parents=True, exist_ok=True)
        files = {}
        for name in ARRAYS:
            path = folder / f"{name}.npy"
            np.save(path, getattr(self, name))
            files[name] = str(path)
        return TrialData(**{n: np.load(files[n], mmap_mode="r") for n in ARRAYS}, task=self.task,
                         n_outputs=self.n_outputs, target_std=self.target_std, files=files)

    def in_memory(self) -> TrialData:
        """This data with its arrays pickled by value (for workers on other machines, which lack the files)."""
        return TrialData(*(np.asarray(getattr(self, n)) for n in ARRAYS), self.task, self.n_outputs, self.target_std)

    def __getstate__(self) -> dict:
        if not self.files:
            return self.__dict__
        return {k: v for k, v in self.__dict__.items() if k not in ARRAYS}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        for name, path in self.files.items():
            setattr(self, name, np.load(path, mmap_mode="r"))
