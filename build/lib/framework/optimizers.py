"""Optimizers with the update rules of `torch.optim` (same hyper-parameters, same numerics).

Each keeps its per-parameter state (velocity, moments) in lists parallel to the parameters
it was bound to, and updates the parameters in place, as scikit-learn's
`_stochastic_optimizers` do. `weight_decay` is L2 added to the gradient, as in torch.
"""

from __future__ import annotations

import numpy as np


def _check(owner: str, **values) -> None:
    """Raise a ValueError naming the first hyper-parameter that is not a finite number in range."""
    for name, (value, low, low_inclusive, high) in values.items():
        ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool) and np.isfinite(value)
        ok = ok and (value >= low if low_inclusive else value > low) and (high is None or value < high)
        if not ok:
            bound = f"{'>=' if low_inclusive else '>'} {low}" + (f" and < {high}" if high is not None else "")
            raise ValueError(f"{owner}: {name} must be a number {bound}, got {value!r}")


def _span(arrays: list[np.ndarray]) -> np.ndarray | None:
    """The 1-D array that `arrays` tile end to end, when they are consecutive C-ordered views of one buffer.

    `Model` lays its Dense layers' parameters (and, separately, their gradients) out this way, so
    an optimizer can update them all with a handful of whole-buffer operations: on small networks
    the per-call overhead of numpy, paid per array, costs more than the arithmetic.
    """
    if not arrays:
        return None
    base = arrays[0].base
    if not isinstance(base, np.ndarray) or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    start = arrays[0].__array_interface__["data"][0]
    end = start
    for a in arrays:
        if a.base is not base or a.dtype != base.dtype or not a.flags.c_contiguous \
                or a.__array_interface__["data"][0] != end:
            return None
        end += a.nbytes
    offset = (start - base.__array_interface__["data"][0]) // base.itemsize
    return base[offset:offset + (end - start) // base.itemsize]


def _split(flat: np.ndarray, like: list[np.ndarray]) -> list[np.ndarray]:
    """Views of `flat` shaped like the arrays of `like`, end to end."""
    views, offset = [], 0
    for a in like:
        views.append(flat[offset:offset + a.size].reshape(a.shape))
        offset += a.size
    return views


class Optimizer:
    """Base: `bind(params, grads)` once, then `step()` after every backward pass.

    `step` walks `self._groups`, tuples (param, grad, *state): one tuple covering every parameter
    when the parameters and gradients each fill one flat buffer (as `Model` lays them out),
    else one tuple per parameter. The update is element-wise, so both give identical numbers.
    """

    def __init__(self, lr: float, weight_decay: float = 0.0) -> None:
        self.lr = lr
        self.weight_decay = weight_decay
        self.params: list[np.ndarray] = []
        self.grads: list[np.ndarray] = []
        self.iterations = 0
        self._flat: tuple[np.ndarray, np.ndarray] | None = None
        self._groups: list[tuple[np.ndarray, ...]] = []

    def bind(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """Attach to the model's parameter and gradient arrays and reset the state."""
        self.params, self.grads = params, grads
        self.iterations = 0
        flat_params, flat_grads = _span(params), _span(grads)
        self._flat = None if flat_params is None or flat_grads is None else (flat_params, flat_grads)
        self._init_state()

    def _init_state(self) -> None:
        self._groups = self._make_groups()

    def _zeros_like_params(self) -> list[np.ndarray]:
        """Zeroed per-parameter state arrays; views of one flat buffer when the parameters share one."""
        if self._flat is None:
            return [np.zeros_like(p) for p in self.params]
        return _split(np.zeros_like(self._flat[0]), self.params)

    def _make_groups(self, *states: list[np.ndarray]) -> list[tuple[np.ndarray, ...]]:
        """(param, grad, *state) tuples for `step`: the flat spans when storage is shared, else per parameter."""
        if self._flat is not None:
            return [(*self._flat, *(_span(state) for state in states))]
        return list(zip(self.params, self.grads, *states))

    def _state_names(self) -> tuple[str, ...]:
        return ()

    def state(self) -> dict[str, list[np.ndarray]]:
        """Per-parameter state arrays by name (saved with the model so training can resume)."""
        return {name: getattr(self, name) for name in self._state_names()}

    def load_state(self, state: dict[str, list[np.ndarray]], iterations: int) -> None:
        """Restore state saved by `state()` (same parameter order and shapes)."""
        for name in self._state_names():
            for mine, saved in zip(getattr(self, name), state[name], strict=True):
                mine[...] = saved
        self.iterations = int(iterations)

    def snapshot(self) -> tuple[dict[str, list[np.ndarray]], int]:
        """Copies of the state and the step count, for `restore` (fit keeps one to undo a diverged epoch)."""
        return {name: [a.copy() for a in arrays] for name, arrays in self.state().items()}, self.iterations

    def restore(self, snapshot: tuple[dict[str, list[np.ndarray]], int]) -> None:
        """Go back to the state and step count of a `snapshot()`."""
        self.load_state(*snapshot)

    def _decayed(self, p: np.ndarray, g: np.ndarray) -> np.ndarray:
        # torch adds weight_decay * p to the gradient (L2), not decoupled decay.
        return g + self.weight_decay * p if self.weight_decay else g

    def step(self) -> None:
        """Update every bound parameter in place from its gradient."""
        raise NotImplementedError

    @property
    def name(self) -> str:
        return type(self).__name__

    def get_config(self) -> dict:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{self.name}({args})"


class SGD(Optimizer):
    """SGD with optional (Nesterov) momentum: torch.optim.SGD with dampening 0."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0):
        _check("SGD", lr=(lr, 0, False, None), momentum=(momentum, 0, True, None),
               weight_decay=(weight_decay, 0, True, None))
        if nesterov and momentum <= 0:
            raise ValueError(f"SGD: nesterov needs momentum > 0, got momentum={momentum!r}")
        super().__init__(lr, weight_decay)
        self.momentum, self.nesterov = momentum, bool(nesterov)

    def _init_state(self) -> None:
        self.velocity = self._zeros_like_params() if self.momentum else []
        groups = self._make_groups(self.velocity) if self.momentum else self._make_groups()
        # scratch holds lr * g, so the update allocates nothing per step
        self._groups = [(p, g, np.empty_like(p), *state) for p, g, *state in groups]

    def _state_names(self) -> tuple[str, ...]:
        return ("velocity",) if self.momentum else ()

    def step(self) -> None:
        first = self.iterations == 0
        self.iterations += 1
        lr, momentum, decay = self.lr, self.momentum, self.weight_decay
        for p, g, scratch, *velocity in self._groups:
            if decay:
                g = self._decayed(p, g)
            if momentum:
                v = velocity[0]
                if first:  # torch starts the buffer at the first gradient
                    v[...] = g
                else:
                    v *= momentum
                    v += g
                g = g + momentum * v if self.nesterov else v
            np.multiply(g, lr, out=scratch)
            p -= scratch

    def get_config(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}


class Adam(Optimizer):
    """Adam (Kingma & Ba), bias-corrected with eps outside the square root: torch.optim.Adam."""

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.0):
        _check("Adam", lr=(lr, 0, False, None), beta1=(beta1, 0, True, 1), beta2=(beta2, 0, True, 1),
               eps=(eps, 0, True, None), weight_decay=(weight_decay, 0, True, None))
        super().__init__(lr, weight_decay)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def _init_state(self) -> None:
        self.m = self._zeros_like_params()
        self.v = self._zeros_like_params()
        self._groups = self._make_groups(self.m, self.v)

    def _state_names(self) -> tuple[str, ...]:
        return ("m", "v")

    def step(self) -> None:
        self.iterations += 1
        t = self.iterations
        b1, b2 = self.beta1, self.beta2
        step_size = self.lr / (1 - b1**t)
        bias2_sqrt = np.sqrt(1 - b2**t)
        for p, g, m, v in self._groups:
            g = self._decayed(p, g)
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            denom = np.sqrt(v)
            denom /= bias2_sqrt
            denom += self.eps
            p -= step_size * (m / denom)

    def get_config(self) -> dict:
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps,
                "weight_decay": self.weight_decay}


class RMSProp(Optimizer):
    """RMSProp (Hinton), optionally with momentum: torch.optim.RMSprop with alpha = rho, not centered."""

    def __init__(self, lr: float = 1e-2, rho: float = 0.99, eps: float = 1e-8, momentum: float = 0.0,
                 weight_decay: float = 0.0):
        _check("RMSProp", lr=(lr, 0, False, None), rho=(rho, 0, True, 1), eps=(eps, 0, True, None),
               momentum=(momentum, 0, True, None), weight_decay=(weight_decay, 0, True, None))
        super().__init__(lr, weight_decay)
        self.rho, self.eps, self.momentum = rho, eps, momentum

    def _init_state(self) -> None:
        self.square_avg = self._zeros_like_params()
        self.velocity = self._zeros_like_params() if self.momentum else []
        states = (self.square_avg, self.velocity) if self.momentum else (self.square_avg,)
        self._groups = self._make_groups(*states)

    def _state_names(self) -> tuple[str, ...]:
        return ("square_avg", "velocity") if self.momentum else ("square_avg",)

    def step(self) -> None:
        self.iterations += 1
        for p, g, sq, *velocity in self._groups:
            g = self._decayed(p, g)
            sq *= self.rho
            sq += (1 - self.rho) * (g * g)
            avg = np.sqrt(sq)
            avg += self.eps
            if self.momentum:
                buf = velocity[0]
                buf *= self.momentum
                buf += g / avg
                p -= self.lr * buf
            else:
                p -= self.lr * (g / avg)

    def get_config(self) -> dict:
        return {"lr": self.lr, "rho": self.rho, "eps": self.eps, "momentum": self.momentum,
                "weight_decay": self.weight_decay}


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "rmsprop": RMSProp}


def get_optimizer(optimizer: Optimizer | str, **kwargs) -> Optimizer:
    """An optimizer from an instance or a name (sgd, adam, rmsprop) with keyword hyper-parameters."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    cls = OPTIMIZERS.get(optimizer.lower()) if isinstance(optimizer, str) else None
    if cls is None:
        raise ValueError(f"optimizer: unknown optimizer {optimizer!r}; expected one of {', '.join(OPTIMIZERS)}")
    return cls(**kwargs)
