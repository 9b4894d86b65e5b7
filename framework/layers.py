"""Layer base class and the trainable Dense layer and Dropout."""

from __future__ import annotations

import numpy as np

from .initializers import INITIALIZERS, initialize


class Layer:
    """Base layer: `forward(x, training)` caches what `backward(grad)` needs.

    A trainable layer keeps `params` and `grads`, dicts with the same keys; `backward`
    fills `grads` in place and returns the gradient for the layer below.
    """

    # True for a layer that reaches its arrays only through `params` and `grads`, so `Model` may
    # move them into its flat buffers (see `framework.storage`).
    flat_storage = False

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}  # state that is saved but not trained (running statistics)
        self._ones: np.ndarray | None = None

    def build(self, rng: np.random.Generator, dtype) -> None:
        """Create parameters (if any) from `rng` in `dtype`; called once by `Model`."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        raise NotImplementedError

    def get_config(self) -> dict:
        """Constructor arguments, JSON-serialisable, so that `cls(**config)` rebuilds it."""
        return {}

    def _column_sums(self, a: np.ndarray, out: np.ndarray) -> np.ndarray:
        """The column sums of the 2-D `a` into `out`, as ones @ a: one BLAS call, a few times cheaper
        than np.sum(axis=0) on small batches."""
        n, ones = len(a), self._ones
        if ones is None or len(ones) < n or ones.dtype != a.dtype:
            ones = self._ones = np.ones(n, dtype=a.dtype)
        if a.dtype == out.dtype:
            return np.dot(ones if len(ones) == n else ones[:n], a, out=out)
        return np.sum(a, axis=0, out=out)  # np.dot cannot cast into out

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{self.name}({args})"


class Dense(Layer):
    """Fully connected layer: `y = x @ W + b`, W of shape (n_in, n_out)."""

    flat_storage = True

    def __init__(self, n_in: int, n_out: int, init: str = "he") -> None:
        super().__init__()
        for arg, value in (("n_in", n_in), ("n_out", n_out)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"Dense: {arg} must be a positive integer, got {value!r}")
        if init not in INITIALIZERS:
            raise ValueError(f"Dense: unknown init {init!r}; expected one of {', '.join(INITIALIZERS)}")
        self.n_in, self.n_out, self.init = int(n_in), int(n_out), init
        self._x: np.ndarray | None = None

    def build(self, rng: np.random.Generator, dtype) -> None:
        self.params = {
            "W": initialize(self.init, self.n_in, self.n_out, rng, dtype),
            "b": np.zeros(self.n_out, dtype=dtype),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if not self.params:
            raise RuntimeError(f"{self!r} is not built: put it in a Model (or call build(rng, dtype))")
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ValueError(f"{self!r}: expected input of shape (batch, {self.n_in}), got {x.shape}")
        self._x = x
        out = x @ self.params["W"]
        out += self.params["b"]
        return out

    def backward(self, grad: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        np.matmul(self._x.T, grad, out=self.grads["W"])
        self._column_sums(grad, self.grads["b"])
        # The first layer's input gradient is never used; skipping it saves a matmul.
        return grad @ self.params["W"].T if need_input_grad else None

    def get_config(self) -> dict:
        return {"n_in": self.n_in, "n_out": self.n_out, "init": self.init}

    def __repr__(self) -> str:
        return f"Dense({self.n_in} -> {self.n_out}, init={self.init!r})"


class Dropout(Layer):
    """Inverted dropout: zeroes a `rate` share of units in training, scales the rest by 1/(1-rate)."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout: rate must be a number in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.rng: np.random.Generator | None = None
        self._mask: np.ndarray | None = None
        self._buffer: np.ndarray | None = None  # the uniforms, then the mask, for float input

    def build(self, rng: np.random.Generator, dtype) -> None:
        self.rng = rng

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if not training or self.rate == 0.0:
            self._mask = None
            return x
        if self.rng is None:
            raise RuntimeError(f"{self!r} has no random generator: put it in a Model (or call build(rng, dtype))")
        dtype = x.dtype
        if dtype not in (np.float32, np.float64) or x.ndim == 0:
            keep = self.rng.random(x.shape, dtype=np.float64)
            self._mask = (keep >= self.rate).astype(dtype) / dtype.type(1.0 - self.rate)
            return x * self._mask
        # The same draws and values as (rng.random(x.shape) >= rate).astype(dtype) / (1 - rate), in one
        # buffer reused from batch to batch: the mask is internal state (backward's), not an output.
        mask = self._buffer_for(x)
        self.rng.random(dtype=dtype, out=mask)
        np.greater_equal(mask, self.rate, out=mask)  # 1.0 where kept, else 0.0
        self._mask = np.divide(mask, dtype.type(1.0 - self.rate), out=mask)
        return x * mask

    def _buffer_for(self, x: np.ndarray) -> np.ndarray:
        """A C-ordered buffer shaped like x, kept from call to call (its first rows for a shorter batch)."""
        buffer = self._buffer
        if buffer is None or buffer.dtype != x.dtype or buffer.shape[1:] != x.shape[1:] or len(buffer) < len(x):
            buffer = self._buffer = np.empty(x.shape, x.dtype)
        return buffer if len(buffer) == len(x) else buffer[:len(x)]

    def backward(self, grad: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        return grad if self._mask is None else grad * self._mask

    def get_config(self) -> dict:
        return {"rate": self.rate}
