"""Speed and memory benchmark: the framework's `Model.fit` against a tight hand-written NumPy
loop, scikit-learn's MLPClassifier and PyTorch, training the same MLP on one BLAS thread.

    python benchmarks/bench_framework.py [--quick] [--variants W1,W2-sigmoid,...] [--clock cpu] [--out FILE.json]

The base variants (W1, W2) train Dense-ReLU-Dense with softmax cross-entropy by SGD (lr 0.05,
momentum 0.9, torch-style: v = m v + g, p -= lr v) on shuffled mini-batches, in float32,
for the same number of epochs, without validation. The framework, the hand loop and the
torch loop also sum the per-epoch training loss and accuracy (the framework always logs
them); scikit-learn sums the loss. Workloads:

  W1  scikit-learn digits (1797 x 64, scaled to [0, 1]), 128 hidden, batch 32, 30 epochs
  W2  60,000 x 784 synthetic float32 (10 Gaussian classes), 256 hidden, batch 128, 3 epochs

Variants change the network or the training on a workload, framework against a hand loop with
the same math (benchmarks/hand_loops.py), and torch for BatchNorm:

  W2-sigmoid    Sigmoid instead of ReLU
  W2-dropout    Dropout(0.2) after the hidden ReLU (the hand loop draws the framework's masks)
  W1-extras,    LinearWarmup then CosineAnnealingLR, clip_norm (global gradient norm; 0.25 on W1,
  W2-extras     1.0 on W2, about the median norm, so that many steps clip) and label_smoothing 0.1
  W1-batchnorm  Dense-BatchNorm-ReLU-Dense (torch: nn.BatchNorm1d)

All runs on a workload are interleaved, `repeats` times, and the best time counts (wall-clock, or
the process's CPU time with --clock cpu, steadier when other work shares the machine). Each hand loop
starts from the framework's initial weights and follows its shuffling, so its final weights are
also a check that both compute the same training (`max_weight_diff`).
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

from benchmarks.hand_loops import (  # noqa: E402
    dropout_generator,
    hand_batchnorm_loop,
    hand_loop,
    shuffle_orders,
    warmup_cosine_lrs,
)
from framework import CosineAnnealingLR, LinearWarmup, Model, mlp  # noqa: E402
from framework.losses import SoftmaxCrossEntropy  # noqa: E402
from framework.optimizers import SGD  # noqa: E402

try:
    import torch
except ImportError:  # torch is optional: its column is left out
    torch = None

LR, MOMENTUM, SEED = 0.05, 0.9, 0
# Wall-clock time by default; --clock cpu times with the process's CPU time instead, which a busy
# machine (another process on the same cores) disturbs less: every run here uses one thread.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]
IMPLEMENTATIONS = ("framework", "hand", "sklearn", "torch")

# Issue targets: framework/hand <= 1.15 on the plain MLPs and with schedule + clipping + label smoothing,
# <= 1.10 with Sigmoid or Dropout, <= 1.3 with BatchNorm; sklearn/framework >= 2 (W1) and >= 1.2 (W2);
# torch/framework > 1 on W1, with and without BatchNorm; peak extra memory of fit on W2 < 0.25 x data size.
TARGETS = {
    "W1": {"framework_over_hand": ("<=", 1.15), "sklearn_over_framework": (">=", 2.0),
           "torch_over_framework": (">", 1.0)},
    "W1-extras": {"framework_over_hand": ("<=", 1.15)},
    "W1-batchnorm": {"framework_over_hand": ("<=", 1.3), "torch_over_framework": (">", 1.0)},
    "W2": {"framework_over_hand": ("<=", 1.15), "sklearn_over_framework": (">=", 1.2)},
    "W2-sigmoid": {"framework_over_hand": ("<=", 1.10)},
    "W2-dropout": {"framework_over_hand": ("<=", 1.10)},
    "W2-extras": {"framework_over_hand": ("<=", 1.15)},
}
# Correctness: the framework and the hand loop train the same float32 network (1e-6-ish apart)
WEIGHT_DIFF_TARGET = 1e-4
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
                    epochs=2 if quick else 30, repeats=1 if quick else 25)


def synthetic_workload(quick: bool, n: int = 60_000, d: int = 784, classes: int = 10) -> Workload:
    """Gaussian classes: a random centre per class plus unit noise, built in place in float32."""
    if quick:
        n = 4_000
    rng = np.random.default_rng(1234)
    centres = rng.standard_normal((classes, d), dtype=np.float32) * np.float32(0.1)
    y = rng.integers(0, classes, n)
    X = rng.standard_normal((n, d), dtype=np.float32)
    X += centres[y]
    return Workload("W2", X, y, hidden=256, batch_size=128, epochs=1 if quick else 3, repeats=1 if quick else 5)


@dataclass(frozen=True)
class Variant:
    """A network and training set-up on one workload, and the implementations that train it."""
    name: str
    workload: str
    impls: tuple[str, ...]
    activation: str = "relu"
    dropout: float = 0.0
    batchnorm: bool = False
    extras: bool = False  # lr schedule (LinearWarmup then CosineAnnealingLR), clip_norm and label smoothing
    clip_norm: float | None = None  # with extras: about the median gradient norm, so that many steps clip

    @property
    def summary(self) -> str:
        parts = [f"Dense-{'BatchNorm-' if self.batchnorm else ''}{self.activation}-"
                 f"{f'Dropout({self.dropout})-' if self.dropout else ''}Dense"]
        if self.extras:
            parts.append(f"warm-up + cosine lr, clip_norm {self.clip_norm}, label_smoothing {LABEL_SMOOTHING}")
        return ", ".join(parts)

    def warmup(self, epochs: int) -> int:
        return max(1, epochs // 10)


LABEL_SMOOTHING, DROPOUT = 0.1, 0.2
VARIANTS = {v.name: v for v in (
    Variant("W1", "W1", IMPLEMENTATIONS),
    Variant("W1-extras", "W1", ("framework", "hand"), extras=True, clip_norm=0.25),  # clips about half the steps
    Variant("W1-batchnorm", "W1", ("framework", "hand", "torch"), batchnorm=True),
    Variant("W2", "W2", IMPLEMENTATIONS),
    Variant("W2-sigmoid", "W2", ("framework", "hand"), activation="sigmoid"),
    Variant("W2-dropout", "W2", ("framework", "hand"), dropout=DROPOUT),
    Variant("W2-extras", "W2", ("framework", "hand"), extras=True, clip_norm=1.0),  # about three steps in four
)}


# ---------------------------------------------------------------------------- implementations
def build_framework_model(w: Workload, v: Variant) -> Model:
    model = mlp([w.X.shape[1], w.hidden, w.n_classes], activation=v.activation, dropout=v.dropout,
                batchnorm=v.batchnorm, seed=SEED)
    model.compile(SoftmaxCrossEntropy(label_smoothing=LABEL_SMOOTHING if v.extras else 0.0),
                  SGD(lr=LR, momentum=MOMENTUM, clip_norm=v.clip_norm if v.extras else None))
    return model


def framework_callbacks(w: Workload, v: Variant) -> list:
    if not v.extras:
        return []
    warmup = v.warmup(w.epochs)
    return [LinearWarmup(warmup, then=CosineAnnealingLR(max(1, w.epochs - warmup)))]


def run_framework(w: Workload, v: Variant) -> dict:
    model = build_framework_model(w, v)
    callbacks = framework_callbacks(w, v)
    start = clock()
    history = model.fit(w.X, w.y, epochs=w.epochs, batch_size=w.batch_size, seed=SEED, callbacks=callbacks)
    seconds = clock() - start
    return {"seconds": seconds, "loss": history.history["loss"][-1], "accuracy": history.history["accuracy"][-1],
            "weights": model.get_weights()}


def run_hand(w: Workload, v: Variant) -> dict:
    params = build_framework_model(w, v).get_weights()  # the framework's initial weights
    orders = shuffle_orders(SEED, len(w.X))
    start = clock()
    if v.batchnorm:
        loss, accuracy = hand_batchnorm_loop(w.X, w.y, params, w.epochs, w.batch_size, orders, lr=LR,
                                             momentum=MOMENTUM)
    else:
        lr = warmup_cosine_lrs(LR, w.epochs, v.warmup(w.epochs)) if v.extras else LR
        loss, accuracy = hand_loop(w.X, w.y, params, w.epochs, w.batch_size, orders, lr=lr, momentum=MOMENTUM,
                                   activation=v.activation, dropout=v.dropout, dropout_rng=dropout_generator(SEED),
                                   clip_norm=v.clip_norm if v.extras else None,
                                   label_smoothing=LABEL_SMOOTHING if v.extras else 0.0)
    seconds = clock() - start
    return {"seconds": seconds, "loss": loss, "accuracy": accuracy, "weights": params}


def run_sklearn(w: Workload, v: Variant) -> dict:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(w.hidden,), activation="relu", solver="sgd", alpha=0.0,
                        batch_size=w.batch_size, learning_rate="constant", learning_rate_init=LR,
                        momentum=MOMENTUM, nesterovs_momentum=False, max_iter=w.epochs, shuffle=True,
                        early_stopping=False, tol=0.0, n_iter_no_change=10**9, random_state=SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = clock()
        clf.fit(w.X, w.y)
        seconds = clock() - start
    return {"seconds": seconds, "loss": float(clf.loss_curve_[-1]), "accuracy": None}


def run_torch(w: Workload, v: Variant) -> dict:
    nn = torch.nn
    torch.manual_seed(SEED)
    n, d = w.X.shape
    hidden = [nn.Linear(d, w.hidden), *([nn.BatchNorm1d(w.hidden)] if v.batchnorm else []), nn.ReLU()]
    net = nn.Sequential(*hidden, nn.Linear(w.hidden, w.n_classes))
    optimizer = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    criterion = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(SEED)
    start = clock()
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
    seconds = clock() - start
    return {"seconds": seconds, "loss": total_loss / n, "accuracy": correct / n}


RUNNERS = {"framework": run_framework, "hand": run_hand, "sklearn": run_sklearn, "torch": run_torch}


# ---------------------------------------------------------------------------- measurement
def bench_workload(w: Workload, variants: list[Variant], impls: list[str]) -> dict:
    """Best seconds per epoch of each variant's implementations on one workload.

    All the (variant, implementation) runs of the workload are interleaved, their order rotated
    each repeat, so that a slow spell of the machine hits them alike.
    """
    jobs = [(v, impl) for v in variants for impl in v.impls if impl in impls]
    best: dict[tuple[str, str], float] = {}
    results: dict[tuple[str, str], dict] = {}
    for r in range(w.repeats):
        shift = r % len(jobs)
        for v, impl in jobs[shift:] + jobs[:shift]:
            gc.collect()
            result = RUNNERS[impl](w, v)
            per_epoch = result["seconds"] / w.epochs
            key = (v.name, impl)
            best[key] = min(per_epoch, best.get(key, float("inf")))
            results[key] = result
    return {v.name: variant_figures(w, v, [i for i in v.impls if i in impls], best, results) for v in variants
            if any(i in impls for i in v.impls)}


def variant_figures(w: Workload, v: Variant, impls: list[str], best: dict, results: dict) -> dict:
    seconds = {impl: best[v.name, impl] for impl in impls}
    out = {"description": w.description, "network": v.summary, "shape": list(w.X.shape), "hidden": w.hidden,
           "batch_size": w.batch_size, "epochs": w.epochs, "repeats": w.repeats, "seconds_per_epoch": seconds,
           "final_loss": {impl: results[v.name, impl]["loss"] for impl in impls},
           "final_accuracy": {impl: results[v.name, impl]["accuracy"] for impl in impls}}
    if "framework" in impls and "hand" in impls:
        out["max_weight_diff_framework_vs_hand"] = max(
            float(np.max(np.abs(a - b)))
            for a, b in zip(results[v.name, "framework"]["weights"], results[v.name, "hand"]["weights"], strict=True))
    fw = seconds.get("framework")
    ratios = {}
    if fw:
        if "hand" in seconds:
            ratios["framework_over_hand"] = fw / seconds["hand"]
        for other in ("sklearn", "torch"):
            if other in seconds:
                ratios[f"{other}_over_framework"] = seconds[other] / fw
    out["ratios"] = ratios
    return out


def framework_peak_memory(w: Workload) -> dict:
    """Peak memory `fit` allocates beyond what exists before it (data already float32), traced by tracemalloc."""
    model = build_framework_model(w, VARIANTS["W2"])
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
    for name, res in workloads.items():
        if "max_weight_diff_framework_vs_hand" in res:
            checks[f"{name} max |W_framework - W_hand| < {WEIGHT_DIFF_TARGET}"] = \
                res["max_weight_diff_framework_vs_hand"] < WEIGHT_DIFF_TARGET
    if memory is not None:
        checks[f"W2 peak_over_data < {MEMORY_TARGET}"] = memory["peak_over_data"] < MEMORY_TARGET
    return checks


def print_report(workloads: dict, memory: dict | None, checks: dict, quick: bool) -> None:
    for name, res in workloads.items():
        print(f"\n{name}: {res['network']}; {res['description']}")
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
    parser.add_argument("--variants", default="",
                        help="comma-separated subset of " + ", ".join(VARIANTS) + " (default: all)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall-clock time (default) or the process's CPU time (steadier on a busy machine)")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc measurement")
    args = parser.parse_args(argv)

    global clock
    clock = CLOCKS[args.clock]
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
    wanted = [n.strip() for n in args.variants.split(",") if n.strip()] if args.variants else list(VARIANTS)
    if set(wanted) - set(VARIANTS):
        parser.error(f"unknown variant(s): {', '.join(sorted(set(wanted) - set(VARIANTS)))}")

    if torch is not None:
        torch.set_num_threads(1)
    workloads, memory = {}, None
    print(f"timing: {args.clock} clock, one thread", flush=True)
    with threadpool_limits(1):
        # Warm-up: first-call costs (imports, BLAS and torch initialisation) stay out of the figures.
        warm = synthetic_workload(quick=True)
        warm = Workload("warm-up", warm.X[:512], warm.y[:512], 16, 64, 1, 1)
        for v in VARIANTS.values():
            for impl in v.impls:
                if impl in impls and v.name in wanted:
                    RUNNERS[impl](warm, v)
        for name in names:
            variants = [v for v in VARIANTS.values() if v.workload == name and v.name in wanted]
            if not variants:
                continue
            w = builders[name](args.quick)
            print(f"running {name} ({', '.join(v.name for v in variants)}): {w.description} ...", flush=True)
            workloads.update(bench_workload(w, variants, impls))
            if name == "W2" and "W2" in wanted and "framework" in impls and not args.no_memory:
                memory = framework_peak_memory(w)
            del w
    checks = check_targets(workloads, memory)
    print_report(workloads, memory, checks, args.quick)

    if args.out:
        report = {
            "quick": args.quick,
            "settings": {"lr": LR, "momentum": MOMENTUM, "seed": SEED, "dtype": "float32", "blas_threads": 1,
                         "clock": args.clock},
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
