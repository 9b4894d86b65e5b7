"""The optimizers reproduce torch.optim trajectories: a stored reference always, live torch when installed.

The reference (`optimizer_reference.json`) is written by `make_optimizer_reference.py`: float64
parameters W (3, 2), b (2,) on loss = mean((X @ W + b - Y) ** 2), parameters stored at a few steps.
`framework_trajectory` binds W and b as two separate arrays (one group per parameter), the Model
tests as one flat buffer (one group): both ways must give torch's numbers.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from framework import Dense, Model
from framework.losses import MeanSquaredError
from framework.optimizers import SGD, Adam, AdamW, Optimizer, RMSProp

HERE = Path(__file__).parent
REFERENCE = json.loads((HERE / "optimizer_reference.json").read_text())
CONFIGS = {config["name"]: config for config in REFERENCE["configs"]}
RTOL, ATOL = 1e-10, 1e-12
CLASSES = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW, "RMSProp": RMSProp}


def inputs_as_arrays(inputs: dict) -> dict[str, np.ndarray]:
    return {key: np.array(value, dtype=np.float64) for key, value in inputs.items()}


def least_squares_grads(X, Y, W, b) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of mean((X @ W + b - Y) ** 2) with respect to W and b, in closed form."""
    residual = X @ W + b - Y
    scale = 2.0 / residual.size
    return scale * X.T @ residual, scale * residual.sum(axis=0)


def framework_trajectory(optimizer: Optimizer, inputs: dict, steps: int, checkpoints) -> dict:
    """Parameters at each checkpoint when `optimizer` (bound to W, b) minimises the least-squares loss."""
    a = inputs_as_arrays(inputs)
    W, b = a["W0"].copy(), a["b0"].copy()
    dW, db = np.zeros_like(W), np.zeros_like(b)
    optimizer.bind([W, b], [dW, db])
    trajectory = {}
    for step in range(1, steps + 1):
        dW[...], db[...] = least_squares_grads(a["X"], a["Y"], W, b)
        optimizer.step()
        if step in checkpoints:
            trajectory[str(step)] = {"W": W.copy(), "b": b.copy()}
    return trajectory


def assert_trajectories_match(actual: dict, expected: dict, rtol: float = RTOL) -> None:
    assert set(actual) == set(expected)
    for step in expected:
        for key in ("W", "b"):
            np.testing.assert_allclose(actual[step][key], np.array(expected[step][key]), rtol=rtol, atol=ATOL,
                                       err_msg=f"step {step}, parameter {key}")


def max_relative_difference(actual: dict, expected: dict) -> float:
    return max(
        float(np.max(np.abs(actual[step][key] - np.array(expected[step][key]))
                     / (np.abs(np.array(expected[step][key])) + ATOL)))
        for step in expected for key in ("W", "b")
    )


def make(config: dict) -> Optimizer:
    return CLASSES[config["optimizer"]](**config["kwargs"])


def run(config: dict, optimizer: Optimizer | None = None) -> dict:
    return framework_trajectory(optimizer or make(config), REFERENCE["inputs"], REFERENCE["steps"],
                                REFERENCE["checkpoints"])


# ---------------------------------------------------------------------------------------------- stored reference
def test_reference_covers_every_required_rule():
    assert REFERENCE["steps"] >= 30
    assert set(CONFIGS) == {
        "sgd", "sgd_momentum", "sgd_nesterov", "sgd_weight_decay", "sgd_nesterov_weight_decay",
        "adam", "adam_weight_decay",
        "rmsprop", "rmsprop_weight_decay", "rmsprop_momentum", "rmsprop_momentum_weight_decay",
        "sgd_dampening", "sgd_dampening_weight_decay", "adam_amsgrad", "adamw", "adamw_amsgrad", "rmsprop_centered",
        "rmsprop_centered_momentum_weight_decay", "sgd_momentum_clip_norm", "adam_clip_value",
        "adamw_clip_value_and_norm", "rmsprop_clip_norm",
    }
    # The RMSProp configs do not all use torch's default alpha: rho really is passed as alpha.
    assert {c["kwargs"]["rho"] for c in CONFIGS.values() if c["optimizer"] == "RMSProp"} > {0.99}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_optimizer_matches_stored_torch_trajectory(name):
    assert_trajectories_match(run(CONFIGS[name]), CONFIGS[name]["trajectory"])


@pytest.mark.parametrize("name", [
    "sgd_nesterov_weight_decay", "adam_weight_decay", "rmsprop_momentum_weight_decay", "sgd_dampening_weight_decay",
    "adamw_amsgrad", "rmsprop_centered_momentum_weight_decay", "sgd_momentum_clip_norm", "adam_clip_value",
    "adamw_clip_value_and_norm"])
def test_model_train_on_batch_matches_stored_torch_trajectory(name):
    """The same numbers through the public path: Dense(3, 2) + MeanSquaredError + train_on_batch."""
    config, a = CONFIGS[name], inputs_as_arrays(REFERENCE["inputs"])
    model = Model([Dense(3, 2)], seed=0, dtype="float64")
    model.set_weights([a["W0"], a["b0"]])
    model.compile(MeanSquaredError(), make(config))
    actual = {}
    for step in range(1, REFERENCE["steps"] + 1):
        model.train_on_batch(a["X"], a["Y"])
        if step in REFERENCE["checkpoints"]:
            W, b = model.get_weights()
            actual[str(step)] = {"W": W, "b": b}
    assert_trajectories_match(actual, config["trajectory"])


def test_optimizer_state_survives_later_steps_without_rebinding():
    """`iterations` counts steps (Adam's bias correction and SGD's first momentum step depend on it)."""
    optimizer = make(CONFIGS["adam"])
    run(CONFIGS["adam"], optimizer)
    assert optimizer.iterations == REFERENCE["steps"]
    assert all(np.any(m != 0) for m in optimizer.state()["m"])


# ---------------------------------------------------------------------------------------------- discrimination
class AdamWithoutBiasCorrection(Adam):
    def step(self) -> None:
        self.iterations += 1
        for p, g, m, v in zip(self.params, self.grads, self.m, self.v):
            g = self._decayed(p, g)
            m[...] = self.beta1 * m + (1 - self.beta1) * g
            v[...] = self.beta2 * v + (1 - self.beta2) * g * g
            p -= self.lr * m / (np.sqrt(v) + self.eps)


class AdamWithDecoupledDecay(Adam):
    """AdamW's rule: decay applied to the weights, not added to the gradient (not torch.optim.Adam)."""

    def step(self) -> None:
        decay, self.weight_decay = self.weight_decay, 0.0
        before = [p.copy() for p in self.params]
        super().step()
        self.weight_decay = decay
        for p, p0 in zip(self.params, before):
            p -= self.lr * decay * p0


class SGDWithDampening(SGD):
    """Momentum with dampening = momentum (v = m v + (1 - m) g), which torch's dampening=0 is not."""

    def step(self) -> None:
        first = self.iterations == 0
        self.iterations += 1
        for p, g, v in zip(self.params, self.grads, self.velocity):
            g = self._decayed(p, g)
            v[...] = g if first else self.momentum * v + (1 - self.momentum) * g
            p -= self.lr * v


class ClipEachArray(SGD):
    """clip_norm applied to each parameter's own norm rather than the norm of all of them."""

    def step(self) -> None:
        for g in self.grads:
            norm = np.sqrt(np.sum(g * g))
            g *= min(self.clip_norm / (norm + 1e-6), 1.0)
        self._update()


class ClipWithoutTorchsEpsilon(SGD):
    """clip_norm / norm, without the 1e-6 torch adds to the norm."""

    def step(self) -> None:
        norm = np.sqrt(sum(np.sum(g * g) for g in self.grads))
        for g in self.grads:
            g *= min(self.clip_norm / norm, 1.0)
        self._update()


class RMSPropEpsInsideSqrt(RMSProp):
    def step(self) -> None:
        self.iterations += 1
        for p, g, sq in zip(self.params, self.grads, self.square_avg):
            g = self._decayed(p, g)
            sq[...] = self.rho * sq + (1 - self.rho) * g * g
            p -= self.lr * g / np.sqrt(sq + self.eps)


WRONG_RULES = {
    "adam without bias correction": ("adam", AdamWithoutBiasCorrection),
    "adam with decoupled weight decay": ("adam_weight_decay", AdamWithDecoupledDecay),
    "sgd momentum with dampening": ("sgd_momentum", SGDWithDampening),
    "nesterov ignored": ("sgd_nesterov", lambda **kw: SGD(**{**kw, "nesterov": False})),
    "weight decay ignored": ("sgd_weight_decay", lambda **kw: SGD(**{**kw, "weight_decay": 0.0})),
    "rmsprop eps inside the square root": ("rmsprop", RMSPropEpsInsideSqrt),
    "rmsprop rho ignored (torch's default alpha)": ("rmsprop", lambda **kw: RMSProp(**{**kw, "rho": 0.99})),
    "dampening ignored": ("sgd_dampening", lambda **kw: SGD(**{**kw, "dampening": 0.0})),
    "amsgrad ignored": ("adam_amsgrad", lambda **kw: Adam(**{**kw, "amsgrad": False})),
    "adamw decay as L2 (Adam's)": ("adamw", lambda **kw: Adam(**kw)),
    "centered ignored": ("rmsprop_centered", lambda **kw: RMSProp(**{**kw, "centered": False})),
    "clip_norm ignored": ("sgd_momentum_clip_norm", lambda **kw: SGD(**{**kw, "clip_norm": None})),
    "clip_norm per array": ("sgd_momentum_clip_norm", ClipEachArray),
    "clip_norm without torch's 1e-6": ("sgd_momentum_clip_norm", ClipWithoutTorchsEpsilon),
    "clip_value ignored": ("adam_clip_value", lambda **kw: Adam(**{**kw, "clip_value": None})),
    "clip_value ignored beside clip_norm": ("adamw_clip_value_and_norm",
                                            lambda **kw: AdamW(**{**kw, "clip_value": None})),
}


@pytest.mark.parametrize("rule", list(WRONG_RULES))
def test_a_wrong_update_rule_does_not_match_the_reference(rule):
    name, wrong_class = WRONG_RULES[rule]
    config = CONFIGS[name]
    trajectory = run(config, wrong_class(**config["kwargs"]))
    with pytest.raises(AssertionError):
        assert_trajectories_match(trajectory, config["trajectory"])
    assert max_relative_difference(trajectory, config["trajectory"]) > 100 * RTOL  # not a borderline miss


# ---------------------------------------------------------------------------------------------- live torch
@functools.cache
def load_reference_script():
    spec = importlib.util.spec_from_file_location("make_optimizer_reference", HERE / "make_optimizer_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", list(CONFIGS))
def test_optimizer_matches_live_torch(name):
    pytest.importorskip("torch")
    script = load_reference_script()
    config = CONFIGS[name]
    live = script.torch_trajectory(config["optimizer"], config["kwargs"], REFERENCE["inputs"], steps=REFERENCE["steps"],
                                   checkpoints=tuple(REFERENCE["checkpoints"]))
    # The stored file is still what torch computes, and the framework equals torch itself.
    assert_trajectories_match({s: {k: np.array(v) for k, v in p.items()} for s, p in live.items()},
                              config["trajectory"])
    assert_trajectories_match(run(config), live)
    assert [c["name"] for c in script.CONFIGS] == list(CONFIGS), "regenerate optimizer_reference.json"
