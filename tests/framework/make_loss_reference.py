"""Write `loss_reference.json`: torch's loss values and gradients that the framework's losses must reproduce.

Usage (needs torch): `python tests/framework/make_loss_reference.py`

Every case is a network output and targets in float64, fixed here (rounded random values plus
hand-picked ones: clipping boundaries, perfect predictions, logits of +-1000), and the torch
computation the framework's loss stands for: torch.nn's CrossEntropyLoss, BCEWithLogitsLoss and
MSELoss, and for the clipped losses on probabilities the same formula on `torch.clamp(p, eps,
1 - eps)`, whose gradient passes on the boundary and is 0 beyond it. A case's `kwargs` go to
both the framework loss and torch's (label_smoothing). The stored loss and d loss / d output
let the test run without torch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SEED = 20240611
EPS = 1e-7  # the clipped losses' default
OUT = Path(__file__).with_name("loss_reference.json")


def _round(rng: np.random.Generator, shape, scale: float = 1.0) -> list:
    return np.round(rng.normal(scale=scale, size=shape), 4).tolist()


def make_cases(seed: int = SEED) -> list[dict]:
    """The inputs of every case: `framework` names the framework loss class, `torch` the torch computation."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=6).tolist()
    soft = np.round(rng.uniform(0, 1, size=(5, 3)), 3).tolist()  # rows do not sum to 1
    edge = [EPS, 1 - EPS]
    probabilities = [[0.0, 0.3, 0.7], [1.0, 0.0, 0.0], [EPS, 0.5, 1 - EPS], [2e-8, 0.99999995, 0.6],
                     [0.25, 0.25, 0.5]]
    one_hot_rows = [[0, 0, 1], [1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
    return [
        {"name": "softmax_labels", "framework": "SoftmaxCrossEntropy", "torch": "cross_entropy",
         "output": _round(rng, (6, 4), 2.0), "target": labels},
        {"name": "softmax_probability_rows", "framework": "SoftmaxCrossEntropy", "torch": "cross_entropy",
         "output": _round(rng, (5, 3), 2.0), "target": soft},
        {"name": "softmax_one_output", "framework": "SoftmaxCrossEntropy", "torch": "cross_entropy",
         "output": _round(rng, (4, 1)), "target": [0, 0, 0, 0]},
        {"name": "categorical_clipped_one_hot", "framework": "CategoricalCrossEntropy", "torch": "clamped_categorical",
         "output": probabilities, "target": one_hot_rows},
        {"name": "categorical_clipped_soft", "framework": "CategoricalCrossEntropy", "torch": "clamped_categorical",
         "output": probabilities, "target": soft},
        {"name": "binary_clipped", "framework": "BinaryCrossEntropy", "torch": "clamped_binary",
         "output": [[0.0], [1.0], [1.0], [0.0], edge[:1], edge[1:], [0.3], [0.8], [2e-8], [0.99999995]],
         "target": [0, 1, 0, 1, 1, 0, 1, 0, 0.5, 0.25]},
        {"name": "binary_multilabel", "framework": "BinaryCrossEntropy", "torch": "clamped_binary",
         "output": np.round(rng.uniform(0.01, 0.99, size=(4, 3)), 4).tolist(),
         "target": rng.integers(0, 2, size=(4, 3)).tolist()},
        {"name": "logits_binary", "framework": "BCEWithLogits", "torch": "bce_with_logits",
         "output": [[1000.0], [-1000.0], [1000.0], [-1000.0], [30.0], [-30.0], [0.0], [0.7], [-1.3], [2.5]],
         "target": [1, 0, 0, 1, 1, 0, 1, 0, 0.3, 1]},
        {"name": "logits_multilabel", "framework": "BCEWithLogits", "torch": "bce_with_logits",
         "output": _round(rng, (5, 3), 3.0), "target": rng.integers(0, 2, size=(5, 3)).tolist()},
        {"name": "mse_column", "framework": "MeanSquaredError", "torch": "mse",
         "output": _round(rng, (5, 1)), "target": _round(rng, 5)},
        {"name": "mse_labels_one_hot", "framework": "MeanSquaredError", "torch": "mse",
         "output": _round(rng, (6, 4)), "target": labels},
        {"name": "softmax_labels_smoothed", "framework": "SoftmaxCrossEntropy", "torch": "cross_entropy",
         "kwargs": {"label_smoothing": 0.1}, "output": _round(rng, (6, 4), 2.0), "target": labels},
        {"name": "softmax_labels_fully_smoothed", "framework": "SoftmaxCrossEntropy", "torch": "cross_entropy",
         "kwargs": {"label_smoothing": 1.0}, "output": _round(rng, (6, 4), 2.0), "target": labels},
        {"name": "softmax_probability_rows_smoothed", "framework": "SoftmaxCrossEntropy", "torch": "cross_entropy",
         "kwargs": {"label_smoothing": 0.25}, "output": _round(rng, (5, 3), 2.0), "target": soft},
        {"name": "softmax_one_hot_rows_smoothed", "framework": "SoftmaxCrossEntropy", "torch": "cross_entropy",
         "kwargs": {"label_smoothing": 0.2}, "output": _round(rng, (5, 3), 2.0), "target": one_hot_rows},
    ]


def torch_targets(case: dict, torch, output):
    """The targets as torch's loss takes them: int64 labels for cross_entropy, else float rows like output."""
    target = torch.tensor(case["target"], dtype=torch.float64)
    if case["torch"] == "cross_entropy":
        return target.long() if target.ndim == 1 else target
    if target.ndim == 1 and output.shape[1] > 1:  # class labels against several outputs: one-hot
        return torch.nn.functional.one_hot(target.long(), output.shape[1]).double()
    return target.reshape(output.shape)


def torch_loss(case: dict) -> dict:
    """torch's loss value and gradient with respect to the output, for one case."""
    import torch

    output = torch.tensor(case["output"], dtype=torch.float64, requires_grad=True)
    target = torch_targets(case, torch, output)
    kind = case["torch"]
    if kind == "cross_entropy":
        loss = torch.nn.CrossEntropyLoss(**case.get("kwargs", {}))(output, target)
    elif kind == "bce_with_logits":
        loss = torch.nn.BCEWithLogitsLoss()(output, target)
    elif kind == "mse":
        loss = torch.nn.MSELoss()(output, target)
    else:
        p = torch.clamp(output, EPS, 1 - EPS)
        if kind == "clamped_categorical":
            loss = -(target * torch.log(p)).sum() / len(p)
        else:
            loss = -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).mean()
    loss.backward()
    return {"loss": loss.item(), "grad": output.grad.tolist()}


def main() -> None:
    import torch

    cases = [{**case, **torch_loss(case)} for case in make_cases()]
    header = {"about": "torch loss values and d loss / d output, float64; written by make_loss_reference.py",
              "torch_version": torch.__version__, "eps": EPS}
    lines = [json.dumps(header)[:-1] + ', "cases": [']
    lines += [" " + json.dumps(case) + ("," if i < len(cases) - 1 else "") for i, case in enumerate(cases)]
    lines.append("]}")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(cases)} cases)")


if __name__ == "__main__":
    main()
