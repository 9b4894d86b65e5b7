"""Element-wise activations and Softmax, as layers without parameters."""

from __future__ import annotations

import numpy as np

from .layers import Layer


class ReLU(Layer):
    """max(x, 0)."""

    def __init__(self) -> None:
        super().__init__()
        self._zeros: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._positive = x > 0
        # np.maximum against a zeros array runs numpy's SIMD loop; against the scalar 0 it takes a
        # loop several times slower. Same values (NaN still propagates).
        zeros = self._zeros
        if zeros is None or zeros.shape != x.shape or zeros.dtype != x.dtype:
            zeros = self._zeros = np.zeros_like(x)
        return np.maximum(x, zeros)

    def backward(self, grad: np.ndarray, need_input_grad: bool = True) -> np.ndarray:
        return grad * self._positive


class LeakyReLU(Layer):
    """x for x > 0, negative_slope * x otherwise."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)) or negative_slope < 0:
            raise ValueError(f"LeakyReLU: negative_slope must be a number >= 0, got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._slope = np.where(x > 0, x.dtype.type(1), x.dtype.type(self.negative_slope))
        return x * self._slope

    def backward(self, grad: np.ndarray, need_input_grad: bool = True) -> np.ndarray:
        return grad * self._slope

    def get_config(self) -> dict:
        return {"negative_slope": self.negative_slope}


def sigmoid(x: np.ndarray, scratch: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Logistic function without overflow: exp is only taken of -|x|.

    With z = exp(-|x|): 1 / (1 + z) where x >= 0, z / (1 + z) elsewhere. For a float32 or float64
    array, computed as max(z, [x >= 0]) / (1 + z): the same divisions (z <= 1 where x >= 0, and a
    NaN stays NaN), branch-free and into one new array; `scratch`, two arrays of x's dtype and
    shape, hold the temporaries.
    """
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64) or x.ndim == 0:
        z = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + z), z / (1 + z))
    ones_plus, nonneg = scratch if scratch is not None else (np.empty_like(x), np.empty_like(x))
    z = np.abs(x)
    np.negative(z, out=z)
    np.exp(z, out=z)
    np.add(z, 1, out=ones_plus)
    np.greater_equal(x, 0, out=nonneg)  # 1.0 where x >= 0, else 0.0
    np.maximum(z, nonneg, out=z)  # the numerator: 1 where x >= 0, z elsewhere
    return np.divide(z, ones_plus, out=z)


class Sigmoid(Layer):
    """1 / (1 + exp(-x)), stable for large |x|."""

    def __init__(self) -> None:
        super().__init__()
        self._scratch: tuple[np.ndarray, np.ndarray] | None = None

    def _scratch_like(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Two buffers shaped like x kept from call to call (their first rows for a shorter batch), or None."""
        if x.dtype not in (np.float32, np.float64) or x.ndim == 0:
            return None
        scratch = self._scratch
        if scratch is None or scratch[0].dtype != x.dtype or scratch[0].shape[1:] != x.shape[1:] \
                or len(scratch[0]) < len(x):
            scratch = self._scratch = (np.empty(x.shape, x.dtype), np.empty(x.shape, x.dtype))
        n = len(x)
        return scratch if len(scratch[0]) == n else (scratch[0][:n], scratch[1][:n])

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = np.asarray(x)
        self._y = sigmoid(x, self._scratch_like(x))
        return self._y

    def backward(self, grad: np.ndarray, need_input_grad: bool = True) -> np.ndarray:
        y = self._y
        out = grad * y
        scratch = self._scratch_like(out) if out.shape == y.shape and out.dtype == y.dtype else None
        out *= np.subtract(1, y, out=None if scratch is None else scratch[0])  # grad * y * (1 - y), as written
        return out


class Tanh(Layer):
    """Hyperbolic tangent."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._y = np.tanh(x)
        return self._y

    def backward(self, grad: np.ndarray, need_input_grad: bool = True) -> np.ndarray:
        return grad * (1 - self._y * self._y)


def softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so exp never overflows."""
    e = np.exp(x - x.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    return e


class Softmax(Layer):
    """Row-wise softmax over the last axis (pair it with CategoricalCrossEntropy)."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._y = softmax(x)
        return self._y

    def backward(self, grad: np.ndarray, need_input_grad: bool = True) -> np.ndarray:
        # Jacobian-vector product of softmax: y * (g - <g, y>) row by row.
        y = self._y
        return y * (grad - np.sum(grad * y, axis=1, keepdims=True))


ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "sigmoid": Sigmoid, "tanh": Tanh, "softmax": Softmax}


def get_activation(name: str) -> Layer:
    """A new activation layer from its name (relu, leaky_relu, sigmoid, tanh, softmax)."""
    try:
        return ACTIVATIONS[name]()
    except (KeyError, TypeError):
        raise ValueError(f"activation: unknown name {name!r}; expected one of {', '.join(ACTIVATIONS)}") from None
