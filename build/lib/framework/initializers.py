"""Weight initializers: each draws from a numpy Generator handed in, never the global state."""

from __future__ import annotations

import numpy as np

INITIALIZERS = ("he", "xavier", "glorot", "normal")


def initialize(name: str, n_in: int, n_out: int, rng: np.random.Generator, dtype) -> np.ndarray:
    """Return an (n_in, n_out) weight matrix drawn by the named scheme.

    Values are drawn in float64 and then cast, so float32 and float64 models built
    from the same seed hold the same weights up to rounding.
    """
    if name == "he":  # He et al. 2015: keeps ReLU activations' variance constant
        w = rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)
    elif name in ("xavier", "glorot"):  # Glorot & Bengio 2010, uniform form
        limit = np.sqrt(6.0 / (n_in + n_out))
        w = rng.uniform(-limit, limit, size=(n_in, n_out))
    elif name == "normal":  # Nielsen's network2: N(0, 1/n_in)
        w = rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)
    else:
        raise ValueError(f"init: unknown initializer {name!r}; expected one of {', '.join(INITIALIZERS)}")
    return w.astype(dtype, copy=False)
