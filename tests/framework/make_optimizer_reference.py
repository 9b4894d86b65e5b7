"""Write `optimizer_reference.json`: torch.optim trajectories that the framework's optimizers must reproduce.

Usage (needs torch): `python tests/framework/make_optimizer_reference.py`

The problem is a tiny least-squares fit in float64: parameters W (3, 2) and b (2,), loss
mean((X @ W + b - Y) ** 2) on fixed X (4, 3), Y (4, 2) -- exactly what `Dense(3, 2)` with
`MeanSquaredError` computes. Every config below runs STEPS optimizer steps from the same start;
the parameters after each step in CHECKPOINTS are stored (to DIGITS significant digits), together
with the inputs (exactly), so the test needs neither torch nor the random generator to reproduce them.
A config with `clip_value` / `clip_norm` clips the gradients before every step with
torch.nn.utils.clip_grad_value_ and then clip_grad_norm_ (over W and b together), as the framework does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SEED = 20240607
STEPS = 30
CHECKPOINTS = (1, 2, 30)  # the first steps catch state initialisation, the last accumulation
DIGITS = 13  # stored significant digits: 5e-14 relative, far below the tests' rtol of 1e-10
OUT = Path(__file__).with_name("optimizer_reference.json")

# Framework class and every hyper-parameter spelled out (defaults differ between libraries).
CONFIGS = [
    {"name": "sgd", "optimizer": "SGD",
     "kwargs": {"lr": 0.1, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0}},
    {"name": "sgd_momentum", "optimizer": "SGD",
     "kwargs": {"lr": 0.05, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0}},
    {"name": "sgd_nesterov", "optimizer": "SGD",
     "kwargs": {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.0}},
    {"name": "sgd_weight_decay", "optimizer": "SGD",
     "kwargs": {"lr": 0.1, "momentum": 0.0, "nesterov": False, "weight_decay": 0.05}},
    {"name": "sgd_nesterov_weight_decay", "optimizer": "SGD",
     "kwargs": {"lr": 0.03, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01}},
    {"name": "adam", "optimizer": "Adam",
     "kwargs": {"lr": 0.05, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0}},
    {"name": "adam_weight_decay", "optimizer": "Adam",
     "kwargs": {"lr": 0.02, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.05}},
    {"name": "rmsprop", "optimizer": "RMSProp",
     "kwargs": {"lr": 0.01, "rho": 0.9, "eps": 1e-8, "momentum": 0.0, "weight_decay": 0.0}},
    {"name": "rmsprop_weight_decay", "optimizer": "RMSProp",
     "kwargs": {"lr": 0.01, "rho": 0.99, "eps": 1e-8, "momentum": 0.0, "weight_decay": 0.1}},
    {"name": "rmsprop_momentum", "optimizer": "RMSProp",
     "kwargs": {"lr": 0.005, "rho": 0.95, "eps": 1e-8, "momentum": 0.9, "weight_decay": 0.0}},
    {"name": "rmsprop_momentum_weight_decay", "optimizer": "RMSProp",
     "kwargs": {"lr": 0.01, "rho": 0.99, "eps": 1e-6, "momentum": 0.5, "weight_decay": 0.02}},
    # the options added for practitioners' MLPs: dampening, AMSGrad, AdamW, centered RMSProp, clipping
    {"name": "sgd_dampening", "optimizer": "SGD",
     "kwargs": {"lr": 0.05, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0, "dampening": 0.3}},
    {"name": "sgd_dampening_weight_decay", "optimizer": "SGD",
     "kwargs": {"lr": 0.05, "momentum": 0.8, "nesterov": False, "weight_decay": 0.05, "dampening": 0.8}},
    {"name": "adam_amsgrad", "optimizer": "Adam",
     "kwargs": {"lr": 0.05, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8, "weight_decay": 0.0, "amsgrad": True}},
    {"name": "adamw", "optimizer": "AdamW",
     "kwargs": {"lr": 0.05, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1, "amsgrad": False}},
    {"name": "adamw_amsgrad", "optimizer": "AdamW",
     "kwargs": {"lr": 0.02, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.5, "amsgrad": True}},
    {"name": "rmsprop_centered", "optimizer": "RMSProp",
     "kwargs": {"lr": 0.01, "rho": 0.9, "eps": 1e-8, "momentum": 0.0, "weight_decay": 0.0, "centered": True}},
    {"name": "rmsprop_centered_momentum_weight_decay", "optimizer": "RMSProp",
     "kwargs": {"lr": 0.005, "rho": 0.95, "eps": 1e-6, "momentum": 0.9, "weight_decay": 0.02, "centered": True}},
    {"name": "sgd_momentum_clip_norm", "optimizer": "SGD",
     "kwargs": {"lr": 0.05, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0, "clip_norm": 0.5}},
    {"name": "adam_clip_value", "optimizer": "Adam",
     "kwargs": {"lr": 0.05, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0, "clip_value": 0.2}},
    {"name": "adamw_clip_value_and_norm", "optimizer": "AdamW",
     "kwargs": {"lr": 0.05, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1, "clip_value": 0.5,
                "clip_norm": 0.7}},
    {"name": "rmsprop_clip_norm", "optimizer": "RMSProp",
     "kwargs": {"lr": 0.01, "rho": 0.9, "eps": 1e-8, "momentum": 0.5, "weight_decay": 0.0, "clip_norm": 1.0}},
]


def make_inputs(seed: int = SEED) -> dict[str, list]:
    """The fixed problem: data X, Y and starting parameters W0, b0, as nested lists of floats."""
    rng = np.random.default_rng(seed)
    shapes = {"X": (4, 3), "Y": (4, 2), "W0": (3, 2), "b0": (2,)}
    # Rounded to 4 decimals: short in the JSON, and exactly what both libraries start from.
    return {key: np.round(rng.normal(size=shape), 4).tolist() for key, shape in shapes.items()}


def torch_optimizer(name: str, kwargs: dict, params: list):
    """The torch.optim optimizer equal to the framework's `name(**kwargs)` (alpha = rho; the framework's defaults
    for options a config leaves out)."""
    import torch

    if name == "SGD":
        return torch.optim.SGD(params, lr=kwargs["lr"], momentum=kwargs["momentum"],
                               dampening=kwargs.get("dampening", 0.0), nesterov=kwargs["nesterov"],
                               weight_decay=kwargs["weight_decay"])
    if name in ("Adam", "AdamW"):
        cls = torch.optim.Adam if name == "Adam" else torch.optim.AdamW
        return cls(params, lr=kwargs["lr"], betas=(kwargs["beta1"], kwargs["beta2"]), eps=kwargs["eps"],
                   weight_decay=kwargs["weight_decay"], amsgrad=kwargs.get("amsgrad", False))
    if name == "RMSProp":
        return torch.optim.RMSprop(params, lr=kwargs["lr"], alpha=kwargs["rho"], eps=kwargs["eps"],
                                   momentum=kwargs["momentum"], weight_decay=kwargs["weight_decay"],
                                   centered=kwargs.get("centered", False))
    raise ValueError(f"unknown optimizer {name!r}")


def clip(params: list, kwargs: dict) -> None:
    """torch's gradient clipping as the framework applies it: by value, then by the norm of all the gradients."""
    import torch

    if kwargs.get("clip_value") is not None:
        torch.nn.utils.clip_grad_value_(params, kwargs["clip_value"])
    if kwargs.get("clip_norm") is not None:
        torch.nn.utils.clip_grad_norm_(params, kwargs["clip_norm"])


def _rounded(tensor) -> list:
    """A tensor as nested lists of floats with DIGITS significant digits (keeps the JSON small)."""
    return np.vectorize(lambda v: float(f"{v:.{DIGITS}g}"), otypes=[float])(tensor.detach().numpy()).tolist()


def torch_trajectory(name: str, kwargs: dict, inputs: dict, steps: int = STEPS,
                     checkpoints: tuple[int, ...] = CHECKPOINTS) -> dict[str, dict[str, list]]:
    """Parameters after each checkpoint step of torch's optimizer on the least-squares problem."""
    import torch

    X, Y = (torch.tensor(inputs[k], dtype=torch.float64) for k in ("X", "Y"))
    W = torch.tensor(inputs["W0"], dtype=torch.float64, requires_grad=True)
    b = torch.tensor(inputs["b0"], dtype=torch.float64, requires_grad=True)
    optimizer = torch_optimizer(name, kwargs, [W, b])
    trajectory = {}
    for step in range(1, steps + 1):
        optimizer.zero_grad()
        loss = ((X @ W + b - Y) ** 2).mean()
        loss.backward()
        clip([W, b], kwargs)
        optimizer.step()
        if step in checkpoints:
            trajectory[str(step)] = {"W": _rounded(W), "b": _rounded(b)}
    return trajectory


def main() -> None:
    import torch

    inputs = make_inputs()
    configs = [{**config, "trajectory": torch_trajectory(config["optimizer"], config["kwargs"], inputs)}
               for config in CONFIGS]
    header = {
        "about": "torch.optim trajectories on loss = mean((X @ W + b - Y) ** 2), float64; "
                 "written by make_optimizer_reference.py",
        "torch_version": torch.__version__,
        "steps": STEPS,
        "checkpoints": list(CHECKPOINTS),
        "inputs": inputs,
    }
    # One config per line: small, and diffs stay readable.
    lines = [json.dumps(header)[:-1] + ', "configs": [']
    lines += [" " + json.dumps(config) + ("," if i < len(configs) - 1 else "") for i, config in enumerate(configs)]
    lines.append("]}")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(configs)} configs)")


if __name__ == "__main__":
    main()
