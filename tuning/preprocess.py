"""Preprocessing fitted on training rows only: feature scaling and the regression target's standardisation.

Both are plain numbers (saved as JSON in model.npz), so `predict` applies exactly what training did.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from framework.model import ROW_CHUNK


@dataclass
class Affine:
    """Feature scaling as `x * mul + add`: MinMaxScaler and StandardScaler both reduce to it."""

    mul: np.ndarray
    add: np.ndarray

    @classmethod
    def fit(cls, kind: str, X: np.ndarray) -> Affine:
        """Fit the named scaler (minmax, standard, none) on training rows with scikit-learn."""
        from sklearn.preprocessing import MinMaxScaler, StandardScaler

        n = X.shape[1]
        if kind == "none":
            return cls(np.ones(n), np.zeros(n))
        if kind == "minmax":
            scaler = MinMaxScaler().fit(X)
            return cls(scaler.scale_.copy(), scaler.min_.copy())
        scaler = StandardScaler().fit(X)
        return cls(1.0 / scaler.scale_, -scaler.mean_ / scaler.scale_)

    def apply(self, X: np.ndarray) -> np.ndarray:
        """Scaled float32 rows, computed in float64 a slice of rows at a time (no full-size float64 copy)."""
        X = np.asarray(X)
        out = np.empty(X.shape, dtype=np.float32)
        for start in range(0, len(X), ROW_CHUNK):
            rows = X[start:start + ROW_CHUNK].astype(np.float64) * self.mul
            rows += self.add
            out[start:start + ROW_CHUNK] = rows
        return out

    def to_dict(self) -> dict:
        return {"mul": self.mul.tolist(), "add": self.add.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> Affine:
        return cls(np.asarray(d["mul"], dtype=np.float64), np.asarray(d["add"], dtype=np.float64))


@dataclass
class TargetScale:
    """Regression targets are standardised for training (fit on training rows) and mapped back for output."""

    mean: float = 0.0
    std: float = 1.0

    @classmethod
    def fit(cls, y: np.ndarray) -> TargetScale:
        std = float(np.std(y))
        return cls(float(np.mean(y)), std if std > 0 else 1.0)

    def apply(self, y: np.ndarray) -> np.ndarray:
        return ((np.asarray(y, dtype=np.float64) - self.mean) / self.std).astype(np.float32)

    def invert(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=np.float64) * self.std + self.mean
