"""Memory benchmark: the search process's peak RSS on a 60,000 x 784 float32 dataset, over the data's size.

    python benchmarks/bench_memory.py [--rows N] [--scale minmax|standard|none] [--folds K] [--n-jobs N] [--stages]
                                      [--out FILE.json]

Writes an .npz of X (rows x 784 float32) and y (10 classes), and an experiment file of two
configurations, one epoch, one repeat, n_jobs = 1 (every trial runs in the search process), then runs
`python main.py run --config ... --out ...` as a subprocess and reads its peak RSS from the kernel
(os.wait4's ru_maxrss: the search process and any process it waited for). The interpreter's own RSS
after importing what a run imports (numpy, pandas, scikit-learn, matplotlib, the tuning package) is
measured the same way in another subprocess, so the figure says how much of the peak is data:

    peak / data            the target: at most 3x (issue 15)
    (peak - baseline) / data   what the arrays cost

`--stages` also runs the experiment in a child that resets the kernel's high-water mark
(/proc/self/clear_refs) around prepare, the search, the refit, the test and the plots, and prints
each stage's own peak, to show where the memory goes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FEATURES = 784
TARGET_RATIO = 3.0
IMPORTS = ("import numpy, pandas, sklearn.preprocessing, sklearn.model_selection, sklearn.impute, matplotlib; "
           "matplotlib.use('Agg'); import matplotlib.pyplot; "
           "import tuning.cli, tuning.runner, tuning.plots, tuning.report, framework")


def make_data(folder: Path, rows: int, seed: int = 0) -> tuple[Path, int]:
    """An .npz of X (rows x 784 float32, pixel-like values in [0, 1]) and y (10 classes); returns (path, X bytes)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, rows).astype(np.int64)
    X = np.empty((rows, FEATURES), dtype=np.float32)
    for start in range(0, rows, 10_000):  # a block at a time: this process stays small
        block = rng.random((min(10_000, rows - start), FEATURES), dtype=np.float32)
        block[:, :10] += y[start:start + len(block), None] * 0.1  # something to learn
        X[start:start + len(block)] = block
    path = folder / "pixels.npz"
    np.savez(path, X=X, y=y)
    return path, X.nbytes


def write_experiment(folder: Path, data: Path, scale: str, folds: int, n_jobs: int = 1) -> Path:
    path = folder / "exp.toml"
    path.write_text(textwrap.dedent(f"""\
        name = "memory"
        seed = 0

        [data]
        dataset = "{data}"
        test_size = 0.2
        val_size = 0.2
        folds = {folds}
        scale = "{scale}"

        [train]
        epochs = 1
        batch_size = 256
        hidden_units = 16

        [search]
        strategy = "grid"
        repeats = 1
        n_jobs = {n_jobs}

        [search.space]
        lr = [0.05, 0.1]
        """))
    return path


def peak_rss(command: list[str]) -> int:
    """Peak RSS in bytes of `command` run as a subprocess (ru_maxrss of it and what it waited for)."""
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    out, err = process.stdout.read().decode(), process.stderr.read().decode()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{out}\n{err}")
    return usage.ru_maxrss * 1024  # kilobytes on Linux


STAGES = textwrap.dedent("""\
    import json, sys
    sys.path.insert(0, sys.argv[3])
    import matplotlib
    matplotlib.use("Agg")
    from tuning import refit, runner
    from tuning.config import load_experiment

    def high_water():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))

    def rss():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))

    stages = []

    def measured(name, function):
        def wrapper(*args, **kwargs):
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM to the current RSS
            before = rss()
            try:
                return function(*args, **kwargs)
            finally:
                stages.append({"stage": name, "start": before, "peak": high_water(), "end": rss()})
        return wrapper

    runner.prepare = measured("prepare", runner.prepare)
    for name in ("search_all",):
        setattr(runner, name, measured("search", getattr(runner, name)))
    refit.refit = measured("refit", refit.refit)
    refit.test_once = measured("test_once", refit.test_once)
    runner.render = measured("plots and report", runner.render)
    runner.run_experiment(load_experiment(sys.argv[1]), out=sys.argv[2])
    print(json.dumps(stages))
    """)


def stage_peaks(config: Path, out: Path) -> list[dict]:
    """Each stage's peak RSS, from a child that resets the kernel's high-water mark around each one."""
    result = subprocess.run([sys.executable, "-c", STAGES, str(config), str(out), str(ROOT)], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"the stage run failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--scale", default="minmax", choices=["minmax", "standard", "none"])
    parser.add_argument("--folds", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=1, help="above 1: trials in workers (the figure is the "
                        "largest process's peak, the search process's or a worker's)")
    parser.add_argument("--stages", action="store_true", help="also measure each stage's own peak")
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--make", type=Path, help=argparse.SUPPRESS)  # the child that writes the data
    args = parser.parse_args()
    if args.make:
        print(make_data(args.make, args.rows)[1])
        return
    mb = 1024 ** 2
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # In a child: a forked child's ru_maxrss counts the parent's pages before exec, so this process stays small.
        made = subprocess.run([sys.executable, __file__, "--make", str(folder), "--rows", str(args.rows)],
                              capture_output=True, text=True, check=True)
        data, nbytes = folder / "pixels.npz", int(made.stdout)
        config = write_experiment(folder, data, args.scale, args.folds, args.n_jobs)
        baseline = peak_rss([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); {IMPORTS}"])
        peak = peak_rss([sys.executable, "main.py", "run", "--config", str(config), "--out", str(folder / "run"),
                         "--quiet"])
        figures = {"rows": args.rows, "features": FEATURES, "scale": args.scale, "folds": args.folds,
                   "n_jobs": args.n_jobs,
                   "data_bytes": nbytes, "baseline_bytes": baseline, "peak_bytes": peak,
                   "peak_over_data": peak / nbytes, "peak_minus_baseline_over_data": (peak - baseline) / nbytes,
                   "target_ratio": TARGET_RATIO, "within_target": peak <= TARGET_RATIO * nbytes}
        print(f"data (X, {args.rows} x {FEATURES} float32): {nbytes / mb:8.1f} MiB")
        print(f"interpreter after imports:        {baseline / mb:8.1f} MiB ({baseline / nbytes:.2f}x data)")
        print(f"search process peak RSS:          {peak / mb:8.1f} MiB ({peak / nbytes:.2f}x data; "
              f"{(peak - baseline) / nbytes:.2f}x data above the interpreter)")
        print(f"peak <= {TARGET_RATIO:g}x data: {'yes' if figures['within_target'] else 'NO'}")
        if args.stages:
            figures["stages"] = stage_peaks(config, folder / "stages")
            print("stage             start     peak      end   (MiB; peak / data)")
            for s in figures["stages"]:
                print(f"{s['stage']:<16} {s['start'] / mb:6.0f} {s['peak'] / mb:8.0f} {s['end'] / mb:8.0f}"
                      f"   ({s['peak'] / nbytes:.2f}x)")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
