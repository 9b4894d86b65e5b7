"""How long a user's table takes to load and encode: a 100,000-row, 30-column mixed CSV.

    python benchmarks/bench_tables.py [--rows 100000] [--repeats 3]

The CSV has 20 numeric columns (2% of their cells empty) and 10 text columns of 3 to 40 categories
(1% empty), and a text label of 4 classes. Timed, best of `repeats`: reading and checking it
(`load_dataset`), splitting it, and fitting and applying the preprocessing once (`prepare`'s work
before any trial runs: it happens once per experiment, in the parent). Target: under 3 s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tuning.datasets import load_dataset  # noqa: E402
from tuning.splits import split  # noqa: E402
from tuning.trial_data import TrialData  # noqa: E402


def make_csv(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    frame = {"label": rng.choice(["alpha", "beta", "gamma", "delta"], rows)}
    for i in range(20):
        values = rng.normal(i, 1 + i, rows)
        values[rng.random(rows) < 0.02] = np.nan
        frame[f"number_{i}"] = values
    for i in range(10):
        categories = np.array([f"c{i}_{k}" for k in range(3 + 4 * i)], dtype=object)
        values = rng.choice(categories, rows)
        values[rng.random(rows) < 0.01] = None
        frame[f"text_{i}"] = values
    pd.DataFrame(frame).to_csv(path, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mixed.csv"
        make_csv(path, args.rows)
        megabytes = path.stat().st_size / 2**20
        best: dict[str, float] = {}
        for _ in range(args.repeats):
            start = time.perf_counter()
            dataset = load_dataset(str(path), target="label")
            loaded = time.perf_counter()
            splits = split(dataset, 0.2, 0.2, seed=0)
            data = TrialData.for_fold(splits, 0, "minmax")
            done = time.perf_counter()
            for name, seconds in (("load", loaded - start), ("split and encode", done - loaded),
                                  ("total", done - start)):
                best[name] = min(best.get(name, seconds), seconds)
    print(f"{args.rows:,} rows x 30 columns ({megabytes:.0f} MiB CSV) -> "
          f"{data.n_features} features, best of {args.repeats}:")
    for name, seconds in best.items():
        print(f"  {name:<18} {seconds:6.2f} s")
    print(f"target: total under 3 s: {'met' if best['total'] < 3 else 'NOT met'}")


if __name__ == "__main__":
    main()
