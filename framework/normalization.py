"""BatchNorm: batch normalisation of dense activations, with torch.nn.BatchNorm1d's numbers."""

from __future__ import annotations

import numpy as np

from .checks import check_int, check_numbers
from .layers import Layer


class BatchNorm(Layer):
    """Normalise each of `n` features over the batch, then scale by `gamma` and shift by `beta`.

    As torch.nn.BatchNorm1d: in training, the batch's mean and biased variance normalise, and the
    running statistics move towards the batch's mean and unbiased variance by `momentum`
    (running = (1 - momentum) running + momentum batch); at inference the running statistics
    normalise. `gamma` (ones) and `beta` (zeros) are trained like Dense's weights; the running
    mean (zeros) and variance (ones) are `buffers`, saved with the model but not trained.

    A training batch of one row has no variance: torch raises. Here it is normalised by the
    running statistics, which it leaves as they are, as at inference (its gradient is that of
    this fixed normalisation), so a last batch of one row (n % batch_size == 1) still trains
    the layers around it without corrupting the statistics; `fit` warns when that happens.
    """

    flat_storage = True

    def __init__(self, n: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.n = check_int("BatchNorm", "n", n, 1)
        check_numbers("BatchNorm", momentum=(momentum, 0, True, 1, True), eps=(eps, 0, False, None))
        self.momentum, self.eps = float(momentum), float(eps)
        self._cache: tuple | None = None

    def build(self, rng: np.random.Generator, dtype) -> None:
        self.params = {"gamma": np.ones(self.n, dtype=dtype), "beta": np.zeros(self.n, dtype=dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.buffers = {"running_mean": np.zeros(self.n, dtype=dtype), "running_var": np.ones(self.n, dtype=dtype)}

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if not self.params:
            raise RuntimeError(f"{self!r} is not built: put it in a Model (or call build(rng, dtype))")
        if x.ndim != 2 or x.shape[1] != self.n:
            raise ValueError(f"{self!r}: expected input of shape (batch, {self.n}), got {x.shape}")
        batch_statistics = training and len(x) > 1
        if batch_statistics:
            centred, var, out = self._batch_statistics(x)
        else:
            centred, var = x - self.buffers["running_mean"], self.buffers["running_var"]
            out = None
        inv_std = 1 / np.sqrt(var + self.eps)
        scale = self.params["gamma"] * inv_std
        out = np.multiply(centred, scale, out=out)
        out += self.params["beta"]
        self._cache = (centred, inv_std, scale, batch_statistics)
        return out

    def _batch_statistics(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x less the batch mean, the batch's biased variance and a scratch array for the output.

        Moves the running statistics; column sums are BLAS products (see `Layer._column_sums`).
        """
        n = len(x)
        mean = self._column_sums(x, np.empty(self.n, dtype=x.dtype))
        mean /= n
        centred = x - mean
        squares = np.multiply(centred, centred)
        var = self._column_sums(squares, np.empty(self.n, dtype=x.dtype))
        var /= n
        m = self.momentum
        running_mean, running_var = self.buffers["running_mean"], self.buffers["running_var"]
        running_mean *= 1 - m
        running_mean += m * mean
        running_var *= 1 - m
        running_var += (m * n / (n - 1)) * var  # torch keeps the unbiased variance
        return centred, var, squares

    def backward(self, grad: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        centred, inv_std, scale, batch_statistics = self._cache
        n = len(grad)
        d_beta = self._column_sums(grad, self.grads["beta"])
        product = grad * centred
        d_gamma_raw = self._column_sums(product, np.empty(self.n, dtype=grad.dtype))  # sum(grad * centred)
        np.multiply(d_gamma_raw, inv_std, out=self.grads["gamma"])
        if not need_input_grad:
            return None
        dx = grad * scale
        if batch_statistics:  # the batch's mean and variance depend on x too
            dx -= np.multiply(centred, scale * inv_std * inv_std * d_gamma_raw / n, out=product)
            dx -= scale * d_beta / n
        return dx

    def get_config(self) -> dict:
        return {"n": self.n, "momentum": self.momentum, "eps": self.eps}
