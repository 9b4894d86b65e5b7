"""Write `batchnorm_reference.json`: torch.nn.BatchNorm1d's numbers the framework's BatchNorm must reproduce.

Usage (needs torch): `python tests/framework/make_batchnorm_reference.py`

Two problems, float64, inputs stored exactly (rounded to 4 decimals):

- `layer`: BatchNorm1d(4, momentum=0.2, eps=1e-3) with set weight and bias, three training batches
  (of 6, 5 and 2 rows) then one evaluation batch. For each training batch: the output, and the
  gradients of sum(output * G) for a fixed G with respect to the input, weight and bias; the
  running mean and variance after each; the evaluation output from the running statistics.
- `network`: Linear(3, 5) -> BatchNorm1d(5) -> ReLU -> Linear(5, 2) with MSE, six SGD steps
  (lr 0.1, momentum 0.9) on fixed batches; the parameters and running statistics after, and the
  evaluation output on the last batch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SEED = 20240613
DIGITS = 13
OUT = Path(__file__).with_name("batchnorm_reference.json")
LAYER = {"n": 4, "momentum": 0.2, "eps": 1e-3, "batches": (6, 5, 2), "eval_rows": 3}
NETWORK = {"sizes": (3, 5, 2), "steps": 6, "batch": 4, "lr": 0.1, "momentum": 0.9}


def _rounded(array) -> list:
    return np.vectorize(lambda v: float(f"{v:.{DIGITS}g}"), otypes=[float])(np.asarray(array)).tolist()


def make_inputs(seed: int = SEED) -> dict:
    """Every input of both problems, as nested lists (shifted and scaled so normalising really changes them)."""
    rng = np.random.default_rng(seed)

    def normal(*shape, scale=1.0, shift=0.0):
        return np.round(rng.normal(size=shape) * scale + shift, 4).tolist()

    n, (h_in, hidden, h_out) = LAYER["n"], NETWORK["sizes"]
    return {
        "layer": {"weight": normal(n, scale=0.5, shift=1.0), "bias": normal(n),
                  "batches": [normal(rows, n, scale=2.0, shift=3.0) for rows in LAYER["batches"]],
                  "G": [normal(rows, n) for rows in LAYER["batches"]],
                  "eval": normal(LAYER["eval_rows"], n, scale=2.0, shift=3.0)},
        "network": {"W1": normal(h_in, hidden, scale=0.5), "b1": normal(hidden, scale=0.1),
                    "W2": normal(hidden, h_out, scale=0.5), "b2": normal(h_out, scale=0.1),
                    "X": [normal(NETWORK["batch"], h_in, scale=1.5, shift=0.5) for _ in range(NETWORK["steps"])],
                    "Y": [normal(NETWORK["batch"], h_out) for _ in range(NETWORK["steps"])]},
    }


def layer_reference(inputs: dict) -> dict:
    import torch

    bn = torch.nn.BatchNorm1d(LAYER["n"], momentum=LAYER["momentum"], eps=LAYER["eps"]).double()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(inputs["weight"], dtype=torch.float64))
        bn.bias.copy_(torch.tensor(inputs["bias"], dtype=torch.float64))
    steps = []
    for x, G in zip(inputs["batches"], inputs["G"]):
        x = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        bn.zero_grad()
        out = bn.train()(x)
        (out * torch.tensor(G, dtype=torch.float64)).sum().backward()
        steps.append({"out": _rounded(out.detach()), "dx": _rounded(x.grad), "dgamma": _rounded(bn.weight.grad),
                      "dbeta": _rounded(bn.bias.grad), "running_mean": _rounded(bn.running_mean),
                      "running_var": _rounded(bn.running_var)})
    with torch.no_grad():
        evaluated = bn.eval()(torch.tensor(inputs["eval"], dtype=torch.float64))
    return {"steps": steps, "eval_out": _rounded(evaluated)}


def network_reference(inputs: dict) -> dict:
    import torch

    nn = torch.nn
    h_in, hidden, h_out = NETWORK["sizes"]
    net = nn.Sequential(nn.Linear(h_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, h_out)).double()
    with torch.no_grad():  # torch's Linear keeps W transposed: (out, in)
        for layer, w, b in ((net[0], "W1", "b1"), (net[3], "W2", "b2")):
            layer.weight.copy_(torch.tensor(inputs[w], dtype=torch.float64).T)
            layer.bias.copy_(torch.tensor(inputs[b], dtype=torch.float64))
    optimizer = torch.optim.SGD(net.parameters(), lr=NETWORK["lr"], momentum=NETWORK["momentum"])
    for x, y in zip(inputs["X"], inputs["Y"]):
        optimizer.zero_grad()
        loss = ((net.train()(torch.tensor(x, dtype=torch.float64)) - torch.tensor(y, dtype=torch.float64)) ** 2).mean()
        loss.backward()
        optimizer.step()
    bn = net[1]
    with torch.no_grad():
        evaluated = net.eval()(torch.tensor(inputs["X"][-1], dtype=torch.float64))
    return {"W1": _rounded(net[0].weight.detach().T), "b1": _rounded(net[0].bias.detach()),
            "gamma": _rounded(bn.weight.detach()), "beta": _rounded(bn.bias.detach()),
            "W2": _rounded(net[3].weight.detach().T), "b2": _rounded(net[3].bias.detach()),
            "running_mean": _rounded(bn.running_mean), "running_var": _rounded(bn.running_var),
            "eval_out": _rounded(evaluated)}


def reference() -> dict:
    import torch

    inputs = make_inputs()
    return {"about": "torch.nn.BatchNorm1d in float64; written by make_batchnorm_reference.py",
            "torch_version": torch.__version__, "layer_settings": LAYER, "network_settings": NETWORK,
            "inputs": inputs, "layer": layer_reference(inputs["layer"]),
            "network": network_reference(inputs["network"])}


def main() -> None:
    OUT.write_text(json.dumps(reference()) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
