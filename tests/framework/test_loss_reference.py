"""The losses reproduce torch's values and gradients: a stored reference always, live torch when installed.

The reference (`loss_reference.json`) is written by `make_loss_reference.py`: float64 outputs and
targets, torch's loss and d loss / d output. Each case is checked three ways: targets through
`prepare_targets` (as `fit` passes them), handed straight to `forward`, and as an (n, 1) column.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from framework.losses import LOSSES

HERE = Path(__file__).parent
REFERENCE = json.loads((HERE / "loss_reference.json").read_text())
CASES = {case["name"]: case for case in REFERENCE["cases"]}
BY_CLASS = {cls.__name__: cls for cls in LOSSES.values()}
ROUTES = ("prepared", "direct", "column")


def targets_for(case: dict, route: str, loss, output: np.ndarray) -> np.ndarray:
    target = np.array(case["target"])
    if route == "prepared":
        return loss.prepare_targets(target, output.shape[1], np.float64)
    if route == "column" and target.ndim == 1:
        return target[:, None]
    return target


def framework_result(case: dict, route: str) -> tuple[float, np.ndarray]:
    """The framework's loss value and gradient for a case, targets passed by `route`."""
    loss = BY_CLASS[case["framework"]](**case.get("kwargs", {}))
    output = np.array(case["output"], dtype=np.float64)
    value = loss.forward(output, targets_for(case, route, loss, output))
    return value, loss.backward().copy()


def assert_matches(value: float, grad: np.ndarray, expected: dict) -> None:
    np.testing.assert_allclose(value, expected["loss"], rtol=1e-12, atol=1e-15)
    assert grad.shape == np.shape(expected["grad"])
    np.testing.assert_allclose(grad, np.array(expected["grad"]), rtol=1e-10, atol=1e-15)


def test_reference_covers_every_loss_and_the_hard_cases():
    assert {case["framework"] for case in CASES.values()} == set(BY_CLASS)
    assert {"softmax_probability_rows", "softmax_one_output", "categorical_clipped_one_hot", "binary_clipped",
            "logits_binary", "logits_multilabel", "mse_column", "mse_labels_one_hot", "softmax_labels_smoothed",
            "softmax_labels_fully_smoothed", "softmax_probability_rows_smoothed",
            "softmax_one_hot_rows_smoothed"} <= set(CASES)
    eps = REFERENCE["eps"]
    clipped = np.array(CASES["binary_clipped"]["output"])
    assert {0.0, 1.0, eps, 1 - eps} <= set(clipped.ravel())  # both boundaries and beyond them
    assert np.abs(np.array(CASES["logits_binary"]["output"])).max() == 1000.0


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("name", list(CASES))
def test_loss_matches_stored_torch_values(name, route):
    assert_matches(*framework_result(CASES[name], route), CASES[name])


def test_clipped_entries_have_zero_gradient_and_the_boundary_passes():
    """What torch's clamp does, spelled out on the stored binary case."""
    case = CASES["binary_clipped"]
    output = np.array(case["output"])[:, 0]
    _, grad = framework_result(case, "prepared")
    eps = REFERENCE["eps"]
    beyond = (output < eps) | (output > 1 - eps)
    assert np.all(grad[beyond, 0] == 0) and beyond.sum() == 6  # incl. the perfect predictions p = 1, y = 1 ...
    assert np.all(grad[~beyond, 0] != 0)  # ... while on the boundary itself the gradient passes


# ---------------------------------------------------------------------------------------------- live torch
@functools.cache
def load_reference_script():
    spec = importlib.util.spec_from_file_location("make_loss_reference", HERE / "make_loss_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", list(CASES))
def test_loss_matches_live_torch(name):
    pytest.importorskip("torch")
    script = load_reference_script()
    inputs = {k: v for k, v in CASES[name].items() if k not in ("loss", "grad")}
    live = script.torch_loss(inputs)
    assert_matches(live["loss"], np.array(live["grad"]), CASES[name])  # the stored file is still torch's answer
    assert_matches(*framework_result(CASES[name], "direct"), live)
    assert [case["name"] for case in script.make_cases()] == list(CASES), "regenerate loss_reference.json"


def test_torch_also_refuses_a_label_beyond_a_single_output():
    """The behaviour the framework's label check copies: one output means one class, label 0."""
    torch = pytest.importorskip("torch")
    with pytest.raises(IndexError, match="out of bounds"):
        torch.nn.CrossEntropyLoss()(torch.zeros(2, 1), torch.tensor([0, 1]))
