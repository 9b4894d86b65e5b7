"""Optimizers with the update rules of `torch.optim` (same hyper-parameters, same numerics).

Each keeps its per-parameter state (velocity, moments) in lists parallel to the parameters
it was bound to, and updates the parameters in place, as scikit-learn's
`_stochastic_optimizers` do. `weight_decay` is L2 added to the gradient, as in torch, except
for AdamW, whose decay is decoupled (applied to the weights). Every optimizer can clip the
gradients first (`clip_norm`, `clip_value`), as torch's `clip_grad_norm_` / `clip_grad_value_`.
"""

from __future__ import annotations

import numpy as np

from .checks import check_numbers, check_optional_positive
from .storage import span, split


def clip_gradients(grads: list[np.ndarray], clip_norm: float | None, clip_value: float | None) -> None:
    """Clip in place: torch's `clip_grad_value_` (if clip_value), then `clip_grad_norm_` (if clip_norm).

    The norm is the L2 norm of all the gradients together, and the scale torch's
    min(clip_norm / (norm + 1e-6), 1), both in the gradients' dtype as torch computes them.
    `grads` is one flat span when `Model` shares storage, so this is one dot product and one
    multiply; a scale of exactly 1 is skipped (multiplying by it changes nothing).
    """
    if clip_value is not None:
        for g in grads:
            np.clip(g, -clip_value, clip_value, out=g)
    if clip_norm is not None:
        if len(grads) == 1:  # one flat span: the sum below would be 0 + this one product, the same number
            flat = grads[0].reshape(-1)
            total = np.sqrt(np.dot(flat, flat))
        else:
            total = np.sqrt(sum(np.dot(g.reshape(-1), g.reshape(-1)) for g in grads))
        coef = clip_norm / (total + 1e-6)
        if coef < 1:
            for g in grads:
                g *= coef


class Optimizer:
    """Base: `bind(params, grads)` once, then `step()` after every backward pass.

    `step` clips the gradients (when asked) and calls `_update`, which walks `self._groups`,
    tuples (param, grad, *state): one tuple covering every parameter when the parameters and
    gradients each fill one flat buffer (as `Model` lays them out), else one tuple per
    parameter. The update is element-wise, so both give identical numbers.
    """

    def __init__(self, lr: float, weight_decay: float = 0.0, clip_norm: float | None = None,
                 clip_value: float | None = None) -> None:
        check_optional_positive(self.name, clip_norm=clip_norm, clip_value=clip_value)
        self.lr = lr
        self.weight_decay = weight_decay
        self.clip_norm, self.clip_value = clip_norm, clip_value
        self.params: list[np.ndarray] = []
        self.grads: list[np.ndarray] = []
        self.iterations = 0
        self._flat: tuple[np.ndarray, np.ndarray] | None = None
        self._groups: list[tuple[np.ndarray, ...]] = []
        self._clip_grads: tuple[list, list[np.ndarray]] = ([], [])

    def bind(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """Attach to the model's parameter and gradient arrays and reset the state."""
        self.params, self.grads = params, grads
        self.iterations = 0
        flat_params, flat_grads = span(params), span(grads)
        self._flat = None if flat_params is None or flat_grads is None else (flat_params, flat_grads)
        self._init_state()

    def _init_state(self) -> None:
        self._groups = self._make_groups()

    def _zeros_like_params(self) -> list[np.ndarray]:
        """Zeroed per-parameter state arrays; views of one flat buffer when the parameters share one."""
        if self._flat is None:
            return [np.zeros_like(p) for p in self.params]
        return split(np.zeros_like(self._flat[0]), self.params)

    def _make_groups(self, *states: list[np.ndarray]) -> list[tuple[np.ndarray, ...]]:
        """(param, grad, *state) tuples for `step`: the flat spans when storage is shared, else per parameter."""
        if self._flat is not None:
            return [(*self._flat, *(span(state) for state in states))]
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
        """The gradient with weight decay: torch adds weight_decay * p to it (L2), not decoupled decay."""
        return g + self.weight_decay * p if self.weight_decay else g

    def step(self) -> None:
        """Clip the gradients (if asked), then update every bound parameter in place from its gradient."""
        if self.clip_norm is not None or self.clip_value is not None:
            groups, grads = self._clip_grads
            if groups is not self._groups:  # the groups' gradients, listed once per set of groups
                self._clip_grads = groups, grads = self._groups, [group[1] for group in self._groups]
            clip_gradients(grads, self.clip_norm, self.clip_value)
        self._update()

    def _update(self) -> None:
        raise NotImplementedError

    @property
    def name(self) -> str:
        return type(self).__name__

    def get_config(self) -> dict:
        """Constructor arguments, JSON-serialisable, so that `cls(**config)` rebuilds it."""
        return {"lr": self.lr, **self._hyper(), "weight_decay": self.weight_decay, "clip_norm": self.clip_norm,
                "clip_value": self.clip_value}

    def _hyper(self) -> dict:
        """The hyper-parameters of this rule, between lr and weight_decay in the config."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{self.name}({args})"


class SGD(Optimizer):
    """SGD with optional (Nesterov) momentum and dampening: torch.optim.SGD."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0,
                 dampening: float = 0.0, clip_norm: float | None = None, clip_value: float | None = None):
        check_numbers("SGD", lr=(lr, 0, False, None), momentum=(momentum, 0, True, None),
                      weight_decay=(weight_decay, 0, True, None), dampening=(dampening, 0, True, 1, True))
        if nesterov and (momentum <= 0 or dampening != 0):  # torch's rule
            raise ValueError(f"SGD: nesterov needs momentum > 0 and dampening 0, got momentum={momentum!r}, "
                             f"dampening={dampening!r}")
        super().__init__(lr, weight_decay, clip_norm, clip_value)
        self.momentum, self.nesterov, self.dampening = momentum, bool(nesterov), dampening

    def _init_state(self) -> None:
        self.velocity = self._zeros_like_params() if self.momentum else []
        groups = self._make_groups(self.velocity) if self.momentum else self._make_groups()
        # scratch holds lr * g, so the update allocates nothing per step
        self._groups = [(p, g, np.empty_like(p), *state) for p, g, *state in groups]

    def _state_names(self) -> tuple[str, ...]:
        return ("velocity",) if self.momentum else ()

    def _update(self) -> None:
        first = self.iterations == 0
        self.iterations += 1
        lr, momentum, decay, dampening = self.lr, self.momentum, self.weight_decay, self.dampening
        for p, g, scratch, *velocity in self._groups:
            if decay:
                g = self._decayed(p, g)
            if momentum:
                v = velocity[0]
                if first:  # torch starts the buffer at the first gradient, undampened
                    v[...] = g
                else:
                    v *= momentum
                    if dampening:
                        v += np.multiply(g, 1 - dampening, out=scratch)
                    else:
                        v += g
                g = g + momentum * v if self.nesterov else v
            np.multiply(g, lr, out=scratch)
            p -= scratch

    def _hyper(self) -> dict:
        return {"momentum": self.momentum, "nesterov": self.nesterov, "dampening": self.dampening}


class Adam(Optimizer):
    """Adam (Kingma & Ba), bias-corrected with eps outside the square root, optionally AMSGrad: torch.optim.Adam."""

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, clip_norm: float | None = None,
                 clip_value: float | None = None):
        check_numbers(self.name, lr=(lr, 0, False, None), beta1=(beta1, 0, True, 1), beta2=(beta2, 0, True, 1),
                      eps=(eps, 0, True, None), weight_decay=(weight_decay, 0, True, None))
        super().__init__(lr, weight_decay, clip_norm, clip_value)
        self.beta1, self.beta2, self.eps, self.amsgrad = beta1, beta2, eps, bool(amsgrad)

    def _init_state(self) -> None:
        self.m = self._zeros_like_params()
        self.v = self._zeros_like_params()
        self.v_max = self._zeros_like_params() if self.amsgrad else []  # AMSGrad: the largest v so far
        self._groups = self._make_groups(self.m, self.v, *([self.v_max] if self.amsgrad else []))

    def _state_names(self) -> tuple[str, ...]:
        return ("m", "v", "v_max") if self.amsgrad else ("m", "v")

    def _update(self) -> None:
        self.iterations += 1
        t = self.iterations
        b1, b2 = self.beta1, self.beta2
        step_size = self.lr / (1 - b1**t)
        bias2_sqrt = np.sqrt(1 - b2**t)
        for p, g, m, v, *v_max in self._groups:
            g = self._decayed(p, g)
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            if v_max:
                np.maximum(v_max[0], v, out=v_max[0])
            denom = np.sqrt(v_max[0] if v_max else v)
            denom /= bias2_sqrt
            denom += self.eps
            p -= step_size * (m / denom)

    def _hyper(self) -> dict:
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): torch.optim.AdamW, weight_decay 1e-2 by default.

    Each step first shrinks the weights, p *= 1 - lr * weight_decay, then takes Adam's step on the
    undecayed gradient.
    """

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, clip_norm: float | None = None,
                 clip_value: float | None = None):
        super().__init__(lr, beta1, beta2, eps, weight_decay, amsgrad, clip_norm, clip_value)

    def _decayed(self, p: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Decays the weights themselves, in place, and leaves the gradient as it is."""
        if self.weight_decay:
            p *= 1 - self.lr * self.weight_decay
        return g


class RMSProp(Optimizer):
    """RMSProp (Hinton), optionally centered and with momentum: torch.optim.RMSprop with alpha = rho."""

    def __init__(self, lr: float = 1e-2, rho: float = 0.99, eps: float = 1e-8, momentum: float = 0.0,
                 weight_decay: float = 0.0, centered: bool = False, clip_norm: float | None = None,
                 clip_value: float | None = None):
        check_numbers("RMSProp", lr=(lr, 0, False, None), rho=(rho, 0, True, 1), eps=(eps, 0, True, None),
                      momentum=(momentum, 0, True, None), weight_decay=(weight_decay, 0, True, None))
        super().__init__(lr, weight_decay, clip_norm, clip_value)
        self.rho, self.eps, self.momentum, self.centered = rho, eps, momentum, bool(centered)

    def _init_state(self) -> None:
        self.square_avg = self._zeros_like_params()
        self.grad_avg = self._zeros_like_params() if self.centered else []  # centered: the mean gradient
        self.velocity = self._zeros_like_params() if self.momentum else []
        self._groups = self._make_groups(*(getattr(self, name) for name in self._state_names()))

    def _state_names(self) -> tuple[str, ...]:
        return ("square_avg", *(["grad_avg"] if self.centered else []), *(["velocity"] if self.momentum else []))

    def _update(self) -> None:
        self.iterations += 1
        rho = self.rho
        for p, g, sq, *extra in self._groups:
            g = self._decayed(p, g)
            sq *= rho
            sq += (1 - rho) * (g * g)
            if self.centered:  # the variance of the gradient rather than its second moment
                grad_avg = extra[0]
                grad_avg *= rho
                grad_avg += (1 - rho) * g
                avg = sq - grad_avg * grad_avg
                np.sqrt(avg, out=avg)
            else:
                avg = np.sqrt(sq)
            avg += self.eps
            if self.momentum:
                buf = extra[-1]
                buf *= self.momentum
                buf += g / avg
                p -= self.lr * buf
            else:
                p -= self.lr * (g / avg)

    def _hyper(self) -> dict:
        return {"rho": self.rho, "eps": self.eps, "momentum": self.momentum, "centered": self.centered}


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSProp}


def get_optimizer(optimizer: Optimizer | str, **kwargs) -> Optimizer:
    """An optimizer from an instance or a name (sgd, adam, adamw, rmsprop) with keyword hyper-parameters."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    cls = OPTIMIZERS.get(optimizer.lower()) if isinstance(optimizer, str) else None
    if cls is None:
        raise ValueError(f"optimizer: unknown optimizer {optimizer!r}; expected one of {', '.join(OPTIMIZERS)}")
    return cls(**kwargs)
