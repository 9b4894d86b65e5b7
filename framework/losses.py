"""Losses: `forward(output, y) -> float` and `backward() -> d output`, both mean over the batch.

Classification losses take integer labels of shape (n,) (or an (n, 1) column) or rows of
shape (n, k); `prepare_targets` validates them once per `fit`, so the per-batch path only
checks shapes (see `framework.targets`). `threshold` says how accuracy reads the output:
None is the argmax of each row, a number an element-wise `output > threshold` (binary).
"""

from __future__ import annotations

import numpy as np

from .activations import sigmoid, softmax
from .checks import check_numbers
from .targets import (
    check_finite,
    check_unit_interval,
    class_targets,
    column_targets,
    columns_for_forward,
    labels_for_forward,
    one_hot,
)


class Loss:
    """Base class. `is_classifier` losses get an accuracy metric and label checks."""

    is_classifier = True
    threshold: float | None = None

    def forward(self, output: np.ndarray, y: np.ndarray) -> float:
        raise NotImplementedError

    def batch_loss(self, output: np.ndarray, y: np.ndarray) -> float:
        """`forward` on targets `prepare_targets` returned, as `fit` and `evaluate` call it: a loss may skip
        the per-batch checks a direct call needs (the label range of the fused softmax loss)."""
        return self.forward(output, y)

    def backward(self) -> np.ndarray:
        raise NotImplementedError

    def output_transform(self, output: np.ndarray) -> np.ndarray:
        """What `predict` returns for the network's raw output (identity unless the loss is fused)."""
        return output

    def prepare_targets(self, y, n_out: int, dtype) -> np.ndarray:
        """Validate targets for a network with `n_out` outputs; return them ready for `forward`."""
        return class_targets(self.name, y, n_out, dtype)

    @property
    def name(self) -> str:
        return type(self).__name__

    def get_config(self) -> dict:
        return {}

    def __repr__(self) -> str:
        return f"{self.name}()"


class SoftmaxCrossEntropy(Loss):
    """Softmax followed by cross-entropy, fused on logits: stable, with torch's CrossEntropyLoss numbers.

    The gradient is (p - y) / n for labels and one-hot rows, (p * sum(y) - y) / n for rows
    that do not sum to 1. It runs once per batch on small arrays, where numpy's per-call
    overhead outweighs the arithmetic; hence ufunc methods instead of np.max / np.sum, row
    sums as a product with a ones column, and label entries addressed by flat indices
    (cached row offsets + label).

    `label_smoothing` = eps is torch's: the target becomes (1 - eps) y + eps / k over the k
    classes, for labels and probability rows alike; the loss (and val_loss) is the smoothed one.
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        check_numbers("SoftmaxCrossEntropy", label_smoothing=(label_smoothing, 0, True, 1, True))
        self.label_smoothing = float(label_smoothing)
        self._offsets = np.zeros(0, dtype=np.intp)  # row * n_classes, for flat indices
        self._ones: np.ndarray | None = None  # (n_classes, 1)

    def forward(self, output: np.ndarray, y: np.ndarray) -> float:
        # A label outside [0, k) would index another row's logits: a direct call checks every batch.
        return self.batch_loss(output, labels_for_forward(self.name, output, np.asarray(y)))

    def batch_loss(self, output: np.ndarray, y: np.ndarray) -> float:
        n, k = output.shape
        # C order, whatever the layout of output: backward indexes the flattened gradient in place
        shifted = np.subtract(output, np.maximum.reduce(output, axis=1, keepdims=True), order="C")
        if shifted.dtype.kind != "f":  # integer logits (a direct call): exp goes to float64, in place below
            shifted = shifted.astype(np.float64)
        ones = self._ones
        if ones is None or len(ones) != k or ones.dtype != shifted.dtype:
            ones = self._ones = np.ones((k, 1), dtype=shifted.dtype)
        if y.ndim == 1:
            offsets = self._offsets
            if len(offsets) < n or (n > 1 and offsets[1] != k):
                offsets = self._offsets = np.arange(n, dtype=np.intp) * k
            self._labels = (offsets if len(offsets) == n else offsets[:n]) + y
            picked = shifted.reshape(-1)[self._labels]
            smooth = self.label_smoothing
            row_sums = shifted @ ones if smooth else None  # of the shifted logits, for the smoothed loss
            exp = np.exp(shifted, out=shifted)  # shifted is read no more: its buffer becomes p
            sums = exp @ ones
            exp /= sums
            log_sum = np.log(sums, out=sums)[:, 0]
            if smooth:  # torch: (1 - eps) nll + eps/k sum_c -log p_c, over rows
                picked *= 1 - smooth
                losses = np.subtract(log_sum, picked, out=picked)
                row_sums *= smooth / k
                losses -= row_sums[:, 0]
            else:
                losses = np.subtract(log_sum, picked, out=picked)
            loss = float(np.add.reduce(losses)) / n
        else:
            exp = np.exp(shifted)
            sums = exp @ ones
            log_sum = np.log(sums)
            if self.label_smoothing:
                y = y * (1 - self.label_smoothing) + self.label_smoothing / k
            loss = float(np.sum(y * (log_sum - shifted))) / n
            exp /= sums
        self._p, self._y, self._grad = exp, y, None
        return loss

    def backward(self) -> np.ndarray:
        if self._grad is not None:  # a repeated call: the gradient is done, and the caller owns it
            return self._grad.copy()
        # Turns this forward's own probabilities into the gradient in place: no allocation per batch.
        grad, y = self._p, self._y
        if y.ndim == 1:
            if self.label_smoothing:  # p - ((1 - eps) onehot + eps / k)
                grad -= self.label_smoothing / grad.shape[1]
                grad.reshape(-1)[self._labels] -= 1 - self.label_smoothing
            else:
                grad.reshape(-1)[self._labels] -= 1  # a view: grad is C-ordered (see forward)
        else:
            grad *= y.sum(axis=1, keepdims=True)  # exactly 1 for one-hot rows, so p * 1 stays p
            grad -= y
        grad /= len(grad)
        self._grad = grad
        return grad

    def output_transform(self, output: np.ndarray) -> np.ndarray:
        return softmax(output)

    def get_config(self) -> dict:
        return {"label_smoothing": self.label_smoothing}

    def __repr__(self) -> str:
        return f"{self.name}(label_smoothing={self.label_smoothing!r})" if self.label_smoothing else f"{self.name}()"


class _Clipped(Loss):
    """A loss on probabilities clipped to [eps, 1 - eps] against log(0), as Keras clips them.

    The gradient is the clipped forward's: 0 where the output was clipped, passed through on
    the boundary itself, as torch's `clamp` does. A perfect prediction so has gradient 0.
    """

    def __init__(self, eps: float = 1e-7) -> None:
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps < 0.5:
            raise ValueError(f"{self.name}: eps must be a number in [0, 0.5), got {eps!r}")
        self.eps = float(eps)

    def _clip(self, output: np.ndarray) -> np.ndarray:
        """`output` clipped; remembers where it was inside the bounds, for backward."""
        dtype = output.dtype if output.dtype.kind == "f" else np.dtype(np.float64)
        low, high = dtype.type(self.eps), dtype.type(1 - self.eps)  # the bounds np.clip uses for this dtype
        self._inside = (output >= low) & (output <= high)
        return np.clip(output, low, high)

    def get_config(self) -> dict:
        return {"eps": self.eps}


class CategoricalCrossEntropy(_Clipped):
    """Cross-entropy on probabilities (after a Softmax layer), clipped to [eps, 1 - eps]."""

    def forward(self, output: np.ndarray, y: np.ndarray) -> float:
        y = labels_for_forward(self.name, output, y)
        t = one_hot(y, output.shape[1], output.dtype) if y.ndim == 1 else y
        p = self._clip(output)
        self._p, self._t = p, t
        return float(-np.sum(t * np.log(p))) / len(output)

    def backward(self) -> np.ndarray:
        return np.where(self._inside, -self._t / self._p, 0) / len(self._p)


class _BinaryTargets(Loss):
    """Targets in [0, 1]: (n,) or (n, 1) for one output, multi-label rows (n, k).

    Accuracy is element-wise (Keras' binary accuracy): `output > threshold` against the target.
    """

    threshold = 0.5

    def prepare_targets(self, y, n_out: int, dtype) -> np.ndarray:
        return column_targets(self.name, y, n_out, dtype, check_unit_interval)


class BinaryCrossEntropy(_BinaryTargets, _Clipped):
    """Binary cross-entropy on probabilities (after a Sigmoid layer), clipped to [eps, 1 - eps]."""

    def forward(self, output: np.ndarray, y: np.ndarray) -> float:
        if y.shape != output.shape:
            y = columns_for_forward(self.name, output, y)
        p = self._clip(output)
        self._p, self._y = p, y
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    def backward(self) -> np.ndarray:
        p, y = self._p, self._y
        return np.where(self._inside, (p - y) / (p * (1 - p)), 0) / p.size


class BCEWithLogits(_BinaryTargets):
    """Sigmoid and binary cross-entropy fused on logits, as torch's BCEWithLogitsLoss.

    Stable for any logit: the loss is max(z, 0) - z y + log(1 + exp(-|z|)), whose exp never
    overflows, and the gradient (sigmoid(z) - y) / size. `predict` returns sigmoid(z).
    """

    threshold = 0.0  # logit 0 is probability 0.5

    def forward(self, output: np.ndarray, y: np.ndarray) -> float:
        if y.shape != output.shape:
            y = columns_for_forward(self.name, output, y)
        self._z, self._y = output, y
        return float(np.mean(np.maximum(output, 0) - output * y + np.log1p(np.exp(-np.abs(output)))))

    def backward(self) -> np.ndarray:
        return (sigmoid(self._z) - self._y) / self._z.size

    def output_transform(self, output: np.ndarray) -> np.ndarray:
        return sigmoid(output)


class MeanSquaredError(Loss):
    """Mean of squared errors over all elements, as torch's MSELoss.

    Integer labels (n,) against several outputs are one-hot encoded, as for the classification losses.
    """

    is_classifier = False

    def prepare_targets(self, y, n_out: int, dtype) -> np.ndarray:
        return column_targets(self.name, y, n_out, dtype, check_finite)

    def forward(self, output: np.ndarray, y: np.ndarray) -> float:
        if y.shape != output.shape:
            y = columns_for_forward(self.name, output, y)
        self._diff = output - y
        return float(np.mean(self._diff * self._diff))

    def backward(self) -> np.ndarray:
        return self._diff * (2.0 / self._diff.size)


LOSSES = {
    "softmax_cross_entropy": SoftmaxCrossEntropy,
    "categorical_cross_entropy": CategoricalCrossEntropy,
    "binary_cross_entropy": BinaryCrossEntropy,
    "bce_with_logits": BCEWithLogits,
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
