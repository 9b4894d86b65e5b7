"""Losses: `forward(output, y) -> float` and `backward() -> d output`, both mean over the batch.

Classification losses take integer labels of shape (n,) or one-hot rows of shape (n, k);
`prepare_targets` validates them once per `fit`, so the per-batch path does no checks.
"""

from __future__ import annotations

import numpy as np

from .activations import softmax


class Loss:
    """Base class. `is_classifier` losses get an accuracy metric and integer-label checks."""

    is_classifier = True

    def forward(self, output: np.ndarray, y: np.ndarray) -> float:
        raise NotImplementedError

    def backward(self) -> np.ndarray:
        raise NotImplementedError

    def output_transform(self, output: np.ndarray) -> np.ndarray:
        """What `predict` returns for the network's raw output (identity unless the loss is fused)."""
        return output

    def prepare_targets(self, y, n_out: int, dtype) -> np.ndarray:
        """Validate targets for a network with `n_out` outputs; return them ready for `forward`."""
        return _class_targets(self, y, n_out, dtype)

    @property
    def name(self) -> str:
        return type(self).__name__

    def get_config(self) -> dict:
        return {}

    def __repr__(self) -> str:
        return f"{self.name}()"


def _class_targets(loss: Loss, y, n_out: int, dtype) -> np.ndarray:
    """Integer labels in [0, n_out) as int64, or one-hot rows of width n_out as `dtype`."""
    y = np.asarray(y)
    if y.dtype.kind not in "iubf":
        raise TypeError(f"{loss.name}: labels must be numeric, got dtype {y.dtype}")
    if y.ndim == 2 and y.shape[1] == n_out and n_out > 1:
        if not np.isfinite(y).all():
            raise ValueError(f"{loss.name}: one-hot labels contain NaN or inf")
        return y.astype(dtype, copy=False)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(
            f"{loss.name}: expected labels of shape (n,) or one-hot (n, {n_out}), got shape {y.shape}"
        )
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ValueError(f"{loss.name}: class labels must be whole numbers, got non-integer values")
    classes = max(n_out, 2)  # a single sigmoid output still has two classes
    if y.size and (y.min() < 0 or y.max() >= classes):
        raise ValueError(
            f"{loss.name}: labels must be in [0, {classes - 1}] for a network with {n_out} outputs, "
            f"got values in [{y.min():g}, {y.max():g}]"
        )
    return y.astype(np.int64, copy=False)


def _one_hot_like(output: np.ndarray, y: np.ndarray) -> np.ndarray:
    """`y` as one-hot rows matching `output` (integer labels are expanded)."""
    if y.ndim == 2:
        return y
    t = np.zeros_like(output)
    t[np.arange(len(y)), y] = 1
    return t


class SoftmaxCrossEntropy(Loss):
    """Softmax followed by cross-entropy, fused on logits: stable and with gradient (p - y) / n.

    It runs once per batch on small arrays, where numpy's per-call overhead outweighs the
    arithmetic; hence ufunc methods instead of np.max / np.sum, row sums as a product with a
    ones column, and label entries addressed by flat indices (cached row offsets + label).
    """

    def __init__(self) -> None:
        self._offsets = np.zeros(0, dtype=np.intp)  # row * n_classes, for flat indices
        self._ones: np.ndarray | None = None  # (n_classes, 1)

    def forward(self, output: np.ndarray, y: np.ndarray) -> float:
        n, k = output.shape
        # C order, whatever the layout of output: backward indexes the flattened gradient in place
        shifted = np.subtract(output, np.maximum.reduce(output, axis=1, keepdims=True), order="C")
        exp = np.exp(shifted)
        ones = self._ones
        if ones is None or len(ones) != k or ones.dtype != exp.dtype:
            ones = self._ones = np.ones((k, 1), dtype=exp.dtype)
        sums = exp @ ones
        log_sum = np.log(sums)
        if y.ndim == 1:
            offsets = self._offsets
            if len(offsets) < n or (n > 1 and offsets[1] != k):
                offsets = self._offsets = np.arange(n, dtype=np.intp) * k
            self._labels = (offsets if len(offsets) == n else offsets[:n]) + y
            picked = shifted.reshape(-1)[self._labels]
            loss = float(np.add.reduce(log_sum[:, 0] - picked)) / n
        else:
            loss = float(np.sum(y * (log_sum - shifted))) / n
        exp /= sums
        self._p, self._y = exp, y
        return loss

    def backward(self) -> np.ndarray:
        # Turns the cached probabilities into the gradient in place: no allocation per batch.
        grad, y = self._p, self._y
        if y.ndim == 1:
            grad.reshape(-1)[self._labels] -= 1  # a view: grad is C-ordered (see forward)
        else:
            grad -= y
        grad /= len(grad)
        return grad

    def output_transform(self, output: np.ndarray) -> np.ndarray:
        return softmax(output)


class CategoricalCrossEntropy(Loss):
    """Cross-entropy on probabilities (after a Softmax layer), clipped to [eps, 1] against log(0)."""

    def __init__(self, eps: float = 1e-7) -> None:
        self.eps = float(eps)

    def forward(self, output: np.ndarray, y: np.ndarray) -> float:
        t = _one_hot_like(output, y)
        p = np.clip(output, self.eps, 1.0)
        self._p, self._t = p, t
        return float(-np.sum(t * np.log(p))) / len(output)

    def backward(self) -> np.ndarray:
        return -self._t / self._p / len(self._p)

    def get_config(self) -> dict:
        return {"eps": self.eps}


class BinaryCrossEntropy(Loss):
    """Binary cross-entropy on probabilities (after a Sigmoid layer), clipped against log(0).

    Targets are 0/1 of shape (n,) or (n, 1) for one output, or multi-label (n, k).
    """

    def __init__(self, eps: float = 1e-7) -> None:
        self.eps = float(eps)

    def prepare_targets(self, y, n_out: int, dtype) -> np.ndarray:
        y = np.asarray(y)
        if y.dtype.kind not in "iubf":
            raise TypeError(f"{self.name}: targets must be numeric, got dtype {y.dtype}")
        if y.ndim == 1:
            y = y[:, None]
        if y.ndim != 2 or y.shape[1] != n_out:
            raise ValueError(f"{self.name}: expected targets of shape (n, {n_out}), got shape {y.shape}")
        if not np.all((y >= 0) & (y <= 1)):
            raise ValueError(f"{self.name}: targets must be in [0, 1], got values outside it")
        return y.astype(dtype, copy=False)

    def forward(self, output: np.ndarray, y: np.ndarray) -> float:
        p = np.clip(output, self.eps, 1 - self.eps)
        self._p, self._y = p, y
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    def backward(self) -> np.ndarray:
        p, y = self._p, self._y
        return (p - y) / (p * (1 - p)) / p.size

    def get_config(self) -> dict:
        return {"eps": self.eps}


class MeanSquaredError(Loss):
    """Mean of squared errors over all elements, as torch's MSELoss."""

    is_classifier = False

    def prepare_targets(self, y, n_out: int, dtype) -> np.ndarray:
        y = np.asarray(y)
        if y.dtype.kind not in "iubf":
            raise TypeError(f"{self.name}: targets must be numeric, got dtype {y.dtype}")
        if y.ndim == 1:
            y = y[:, None]
        if y.ndim != 2 or y.shape[1] != n_out:
            raise ValueError(f"{self.name}: expected targets of shape (n, {n_out}) or (n,), got shape {y.shape}")
        if not np.isfinite(y).all():
            raise ValueError(f"{self.name}: targets contain NaN or inf")
        return y.astype(dtype, copy=False)

    def forward(self, output: np.ndarray, y: np.ndarray) -> float:
        self._diff = output - y
        return float(np.mean(self._diff * self._diff))

    def backward(self) -> np.ndarray:
        return self._diff * (2.0 / self._diff.size)


LOSSES = {
    "softmax_cross_entropy": SoftmaxCrossEntropy,
    "categorical_cross_entropy": CategoricalCrossEntropy,
    "binary_cross_entropy": BinaryCrossEntropy,
    "mse": MeanSquaredError,
}
_BY_CLASS_NAME = {cls.__name__: cls for cls in LOSSES.values()}


def get_loss(loss: Loss | str) -> Loss:
    """A loss object from an instance, a short name (`mse`) or a class name (`MeanSquaredError`)."""
    if isinstance(loss, Loss):
        return loss
    cls = LOSSES.get(loss) or _BY_CLASS_NAME.get(loss) if isinstance(loss, str) else None
    if cls is None:
        raise ValueError(f"loss: unknown loss {loss!r}; expected a Loss or one of {', '.join(LOSSES)}")
    return cls()
