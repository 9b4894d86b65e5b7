"""Speed and memory benchmark: the framework's `Model.fit` against a tight hand-written NumPy
loop, scikit-learn's MLPClassifier and PyTorch, training the same MLP on one BLAS thread.

    python benchmarks/bench_framework.py [--quick] [--out FILE.json]

Every implementation trains Dense-ReLU-Dense with softmax cross-entropy by SGD (lr 0.05,
momentum 0.9, torch-style: v = m v + g, p -= lr v) on shuffled mini-batches, in float32,
for the same number of epochs, without validation. The framework, the hand loop and the
torch loop also sum the per-epoch training loss and accuracy (the framework always logs
them); scikit-learn sums the loss. Workloads:

  W1  scikit-learn digits (1797 x 64, scaled to [0, 1]), 128 hidden, batch 32, 30 epochs
  W2  60,000 x 784 synthetic float32 (10 Gaussian classes), 256 hidden, batch 128, 3 epochs

Each workload's implementations run interleaved, `repeats` times, and the best time counts.
The hand loop starts from the framework's initial weights and follows its shuffling, so its
final weights are also a check that both compute the same training (`max_weight_diff`).
Peak extra memory of `fit` on W2 is measured with tracemalloc, as a share of the data size.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
import tracemalloc
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: import the repo's framework

from framework import Model, mlp  # noqa: E402
from framework.optimizers import SGD  # noqa: E402

try:
    import torch
except ImportError:  # torch is optional: its column is left out
    torch = None

LR, MOMENTUM, SEED = 0.05, 0.9, 0
IMPLEMENTATIONS = ("framework", "hand", "sklearn", "torch")

# Issue targets: framework/hand <= 1.15 everywhere, sklearn/framework >= 2 (W1) and >= 1.2 (W2),
# torch/framework > 1 on W1, peak extra memory of fit on W2 < 0.25 x data size.
TARGETS = {
    "W1": {"framework_over_hand": ("<=", 1.15), "sklearn_over_framework": (">=", 2.0),
           "torch_over_framework": (">", 1.0)},
    "W2": {"framework_over_hand": ("<=", 1.15), "sklearn_over_framework": (">=", 1.2)},
}
MEMORY_TARGET = 0.25


@dataclass
class Workload:
    name: str
    X: np.ndarray  # float32, C-contiguous
    y: np.ndarray  # int64 labels
    hidden: int
    batch_size: int
    epochs: int
    repeats: int

    @property
    def description(self) -> str:
        n, d = self.X.shape
        return (f"{n} x {d} -> {self.hidden} -> {self.n_classes}, batch {self.batch_size}, "
                f"{self.epochs} epochs, best of {self.repeats}")

    @property
    def n_classes(self) -> int:
        return int(self.y.max()) + 1


def digits_workload(quick: bool) -> Workload:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return Workload("W1", X, y.astype(np.int64), hidden=128, batch_size=32,
                    epochs=2 if quick else 30, repeats=1 if quick else 5)


def synthetic_workload(quick: bool, n: int = 60_000, d: int = 784, classes: int = 10) -> Workload:
    """Gaussian classes: a random centre per class plus unit noise, built in place in float32."""
    if quick:
        n = 4_000
    rng = np.random.default_rng(1234)
    centres = rng.standard_normal((classes, d), dtype=np.float32) * np.float32(0.1)
    y = rng.integers(0, classes, n)
    X = rng.standard_normal((n, d), dtype=np.float32)
    X += centres[y]
    return Workload("W2", X, y, hidden=256, batch_size=128, epochs=1 if quick else 3, repeats=1 if quick else 2)


# ---------------------------------------------------------------------------- implementations
def build_framework_model(w: Workload) -> Model:
    model = mlp([w.X.shape[1], w.hidden, w.n_classes], seed=SEED)
    model.compile("softmax_cross_entropy", SGD(lr=LR, momentum=MOMENTUM))
    return model


def run_framework(w: Workload) -> dict:
    model = build_framework_model(w)
    start = time.perf_counter()
    history = model.fit(w.X, w.y, epochs=w.epochs, batch_size=w.batch_size, seed=SEED)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "loss": history.history["loss"][-1], "accuracy": history.history["accuracy"][-1],
            "weights": model.get_weights()}


def shuffle_orders(seed: int, n: int):
    """The framework's shuffling stream: `fit(seed=seed)` draws one permutation per epoch from it."""
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[0])
    while True:
        yield rng.permutation(n)


def hand_loop(X, y, params, epochs: int, batch_size: int, orders) -> tuple[float, float]:
    """Tight NumPy training loop, the yardstick: every op in place into preallocated float32 buffers.

    Same math as the framework: fused softmax cross-entropy gradient (p - onehot) / n, no input
    gradient for the first layer, torch-style momentum. `params` = [W1, b1, W2, b2] are updated
    in place. Returns the last epoch's mean loss and accuracy. Tricks, beyond `out=`:
    parameters, gradients and velocity each live in one flat buffer (the SGD update is 4 calls,
    not 16); bias gradients and softmax row sums are matrix-vector products with a ones vector
    (faster than numpy's axis reductions on small arrays); ReLU takes the maximum with a zeros
    array (numpy's maximum with a scalar 0 misses its SIMD loop); `take(mode="clip")` gathers
    without buffering; the label entries are addressed through flat indices; ufunc and array methods
    rather than numpy's Python-level wrapper functions.
    """
    n, d = X.shape
    h, k = params[2].shape
    sizes = [p.size for p in params]
    flat_p, flat_g, flat_v = (np.zeros(sum(sizes), np.float32) for _ in range(3))
    scratch = np.empty_like(flat_p)

    def views(flat):
        ends = np.cumsum(sizes)
        return [flat[end - size:end].reshape(p.shape) for p, size, end in zip(params, sizes, ends)]

    W1, b1, W2, b2 = views(flat_p)
    gW1, gb1, gW2, gb2 = views(flat_g)
    for mine, given in zip((W1, b1, W2, b2), params):
        mine[...] = given

    def batch_buffers(m: int) -> tuple:
        return (np.empty((m, d), np.float32), np.empty(m, np.int64), np.empty((m, h), np.float32),
                np.empty((m, k), np.float32), np.empty((m, 1), np.float32), np.empty((m, 1), np.float32),
                np.empty((m, h), np.float32), np.empty(m, np.bool_), np.arange(m) * k, np.empty(m, np.intp),
                np.ones(m, np.float32), np.zeros((m, h), np.float32), np.empty((m, h), np.bool_))

    full = batch_buffers(batch_size)
    last = batch_buffers(n % batch_size) if n % batch_size else None
    ones_k = np.ones((k, 1), np.float32)
    matmul, dot, multiply = np.matmul, np.dot, np.multiply
    row_max, add_reduce = np.maximum.reduce, np.add.reduce  # the ufunc methods skip np.max/np.sum wrappers
    lr, first = np.float32(LR), True
    for _ in range(epochs):
        order = next(orders)
        total_loss, correct = 0.0, 0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            m = len(idx)
            (xb, yb, a, z, zmax, s, dh, hit, row_offsets, flat, ones_m, zeros,
             positive) = full if m == batch_size else last
            X.take(idx, axis=0, out=xb, mode="clip")  # the method: np.take's Python wrapper costs more
            y.take(idx, out=yb, mode="clip")
            # forward: a = relu(x W1 + b1), z = a W2 + b2 (ReLU in place: a > 0 is its own mask)
            matmul(xb, W1, out=a)
            a += b1
            np.maximum(a, zeros, out=a)
            matmul(a, W2, out=z)
            z += b2
            correct += np.count_nonzero(np.equal(z.argmax(1), yb, out=hit))
            # fused softmax cross-entropy: loss = log sum exp(z - max) - (z - max)[y]; grad = (p - onehot) / m
            row_max(z, axis=1, keepdims=True, out=zmax)
            z -= zmax
            np.add(row_offsets, yb, out=flat)
            zflat = z.reshape(-1)
            picked = zflat[flat]
            np.exp(z, out=z)
            matmul(z, ones_k, out=s)
            z /= s
            total_loss += float(add_reduce(np.log(s, out=s), axis=None) - add_reduce(picked))
            zflat[flat] -= 1
            z /= m
            # backward (no input gradient for the first layer)
            matmul(a.T, z, out=gW2)
            dot(ones_m, z, out=gb2)
            matmul(z, W2.T, out=dh)
            multiply(dh, np.greater(a, 0, out=positive), out=dh)
            matmul(xb.T, dh, out=gW1)
            dot(ones_m, dh, out=gb1)
            # SGD with torch-style momentum on the flat buffers: v = m v + g (v = g at first), p -= lr v
            if first:
                flat_v[...] = flat_g
                first = False
            else:
                multiply(flat_v, MOMENTUM, out=flat_v)
                flat_v += flat_g
            multiply(flat_v, lr, out=scratch)
            flat_p -= scratch
    for given, mine in zip(params, (W1, b1, W2, b2)):
        given[...] = mine
    return total_loss / n, correct / n


def run_hand(w: Workload) -> dict:
    params = build_framework_model(w).get_weights()  # the framework's initial weights
    start = time.perf_counter()
    loss, accuracy = hand_loop(w.X, w.y, params, w.epochs, w.batch_size, shuffle_orders(SEED, len(w.X)))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "loss": loss, "accuracy": accuracy, "weights": params}


def run_sklearn(w: Workload) -> dict:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(w.hidden,), activation="relu", solver="sgd", alpha=0.0,
                        batch_size=w.batch_size, learning_rate="constant", learning_rate_init=LR,
                        momentum=MOMENTUM, nesterovs_momentum=False, max_iter=w.epochs, shuffle=True,
                        early_stopping=False, tol=0.0, n_iter_no_change=10**9, random_state=SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        clf.fit(w.X, w.y)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "loss": float(clf.loss_curve_[-1]), "accuracy": None}


def run_torch(w: Workload) -> dict:
    nn = torch.nn
    torch.manual_seed(SEED)
    n, d = w.X.shape
    net = nn.Sequential(nn.Linear(d, w.hidden), nn.ReLU(), nn.Linear(w.hidden, w.n_classes))
    optimizer = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    criterion = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(SEED)
    start = time.perf_counter()
    X, y = torch.from_numpy(w.X), torch.from_numpy(w.y)  # no copy
    for _ in range(w.epochs):
        order = torch.randperm(n, generator=generator)
        total_loss, correct = 0.0, 0
        for begin in range(0, n, w.batch_size):
            idx = order[begin:begin + w.batch_size]
            xb, yb = X[idx], y[idx]
            out = net(xb)
            loss = criterion(out, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(idx)
            correct += int((out.detach().argmax(1) == yb).sum())
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "loss": total_loss / n, "accuracy": correct / n}


RUNNERS = {"framework": run_framework, "hand": run_hand, "sklearn": run_sklearn, "torch": run_torch}


# ---------------------------------------------------------------------------- measurement
def bench_workload(w: Workload, impls: list[str]) -> dict:
    """Best seconds per epoch of each implementation, runs interleaved (order rotated each repeat)."""
    best: dict[str, float] = {}
    results: dict[str, dict] = {}
    for r in range(w.repeats):
        rotated = impls[r % len(impls):] + impls[:r % len(impls)]
        for impl in rotated:
            gc.collect()
            result = RUNNERS[impl](w)
            per_epoch = result["seconds"] / w.epochs
            if per_epoch < best.get(impl, float("inf")):
                best[impl] = per_epoch
            results[impl] = result
    out = {"description": w.description, "shape": list(w.X.shape), "hidden": w.hidden,
           "batch_size": w.batch_size, "epochs": w.epochs, "repeats": w.repeats,
           "seconds_per_epoch": {impl: best[impl] for impl in impls},
           "final_loss": {impl: results[impl]["loss"] for impl in impls},
           "final_accuracy": {impl: results[impl]["accuracy"] for impl in impls}}
    if "framework" in results and "hand" in results:
        out["max_weight_diff_framework_vs_hand"] = max(
            float(np.max(np.abs(a - b))) for a, b in zip(results["framework"]["weights"], results["hand"]["weights"]))
    fw = best.get("framework")
    ratios = {}
    if fw:
        if "hand" in best:
            ratios["framework_over_hand"] = fw / best["hand"]
        for other in ("sklearn", "torch"):
            if other in best:
                ratios[f"{other}_over_framework"] = best[other] / fw
    out["ratios"] = ratios
    return out


def framework_peak_memory(w: Workload) -> dict:
    """Peak memory `fit` allocates beyond what exists before it (data already float32), traced by tracemalloc."""
    model = build_framework_model(w)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        model.fit(w.X, w.y, epochs=w.epochs, batch_size=w.batch_size, seed=SEED)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    data = w.X.nbytes
    return {"workload": w.name, "data_bytes": data, "peak_extra_bytes": peak, "peak_over_data": peak / data}


def check_targets(workloads: dict, memory: dict | None) -> dict:
    checks = {}
    ops = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b, ">": lambda a, b: a > b}
    for name, targets in TARGETS.items():
        ratios = workloads.get(name, {}).get("ratios", {})
        for key, (op, bound) in targets.items():
            if key in ratios:
                checks[f"{name} {key} {op} {bound}"] = bool(ops[op](ratios[key], bound))
    if memory is not None:
        checks[f"W2 peak_over_data < {MEMORY_TARGET}"] = memory["peak_over_data"] < MEMORY_TARGET
    return checks


def print_report(workloads: dict, memory: dict | None, checks: dict, quick: bool) -> None:
    for name, res in workloads.items():
        print(f"\n{name}: {res['description']}")
        print(f"  {'implementation':<14}{'s/epoch':>10}{'final loss':>12}{'final acc':>11}")
        for impl, sec in res["seconds_per_epoch"].items():
            acc = res["final_accuracy"][impl]
            acc_text = f"{acc:>11.4f}" if acc is not None else f"{'-':>11}"
            print(f"  {impl:<14}{sec:>10.4f}{res['final_loss'][impl]:>12.4f}{acc_text}")
        for key, value in res["ratios"].items():
            print(f"  {key:<26}{value:>8.3f}")
        if "max_weight_diff_framework_vs_hand" in res:
            print(f"  {'max |W_framework - W_hand|':<26}{res['max_weight_diff_framework_vs_hand']:>8.1e}")
    if memory is not None:
        print(f"\nfit peak extra memory on {memory['workload']}: {memory['peak_extra_bytes'] / 2**20:.1f} MiB "
              f"= {memory['peak_over_data']:.3f} x data ({memory['data_bytes'] / 2**20:.1f} MiB)")
    print("\ntargets" + (" (--quick: sizes too small for the figures to mean anything)" if quick else "") + ":")
    for label, ok in checks.items():
        status = ("met" if ok else "not met") if quick else ("PASS" if ok else "FAIL")
        print(f"  {status:<7}  {label}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat: a smoke test in seconds")
    parser.add_argument("--out", type=Path, help="write the figures to this JSON file")
    parser.add_argument("--impls", default=",".join(IMPLEMENTATIONS),
                        help="comma-separated subset of " + ", ".join(IMPLEMENTATIONS))
    parser.add_argument("--workloads", default="W1,W2", help="comma-separated subset of W1, W2")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc measurement")
    args = parser.parse_args(argv)

    impls = [i.strip() for i in args.impls.split(",") if i.strip()]
    unknown = set(impls) - set(IMPLEMENTATIONS)
    if unknown:
        parser.error(f"unknown implementation(s): {', '.join(sorted(unknown))}")
    if "torch" in impls and torch is None:
        print("torch is not importable: skipping its column")
        impls.remove("torch")
    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    builders = {"W1": digits_workload, "W2": synthetic_workload}
    if set(names) - set(builders):
        parser.error(f"unknown workload(s): {', '.join(sorted(set(names) - set(builders)))}")

    if torch is not None:
        torch.set_num_threads(1)
    workloads, memory = {}, None
    with threadpool_limits(1):
        # Warm-up: first-call costs (imports, BLAS and torch initialisation) stay out of the figures.
        warm = synthetic_workload(quick=True)
        warm = Workload("warm-up", warm.X[:512], warm.y[:512], 16, 64, 1, 1)
        for impl in impls:
            RUNNERS[impl](warm)
        for name in names:
            w = builders[name](args.quick)
            print(f"running {name}: {w.description} ...", flush=True)
            workloads[name] = bench_workload(w, impls)
            if name == "W2" and "framework" in impls and not args.no_memory:
                memory = framework_peak_memory(w)
            del w
    checks = check_targets(workloads, memory)
    print_report(workloads, memory, checks, args.quick)

    if args.out:
        report = {
            "quick": args.quick,
            "settings": {"lr": LR, "momentum": MOMENTUM, "seed": SEED, "dtype": "float32", "blas_threads": 1},
            "environment": {"python": platform.python_version(), "numpy": np.__version__,
                            "torch": torch.__version__ if torch is not None else None,
                            "machine": platform.machine(), "processor": platform.processor()},
            "workloads": workloads, "memory": memory, "targets": checks,
        }
        try:
            import sklearn
            report["environment"]["sklearn"] = sklearn.__version__
        except ImportError:
            pass
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
