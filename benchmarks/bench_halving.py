"""Successive halving vs the full grid: epochs and wall time saved, and the best score of each.

    python benchmarks/bench_halving.py [--seeds 0 1 2] [--min-epochs 1 3] [--out FILE.json]

The default digits grid extended to 81 configurations (weight_decay {0, 1e-4, 1e-3}), 2 repeats,
30 epochs, n_jobs=2. For each experiment seed: the full grid, then halving (eta=3) for each
min_epochs. Halving's choice is scored by the full grid's own mean validation accuracy for that
configuration, so both are judged on the same 30-epoch trials: the gap is what halving lost.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tuning.config import load_experiment  # noqa: E402
from tuning.runner import run_experiment  # noqa: E402

GRID = ["search.space.weight_decay=[0.0, 1e-4, 1e-3]", "search.n_jobs=2"]


def run(overrides: list[str]) -> tuple[dict, pd.DataFrame, float, int]:
    """best.json, the leaderboard, wall seconds and epochs trained, for one experiment."""
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        result = run_experiment(load_experiment(None, overrides), out=Path(folder) / "exp", render_report=False)
        wall = time.perf_counter() - start
        epochs = len(pd.read_csv(Path(folder) / "exp" / "history.csv"))
    return result.best, result.leaderboard, wall, epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--min-epochs", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()

    rows = []
    for seed in args.seeds:
        full_best, board, full_wall, full_epochs = run([*GRID, f"seed={seed}"])
        params = list(full_best["params"])
        by_params = board.set_index(params)["mean"]
        for min_epochs in args.min_epochs:
            best, _, wall, epochs = run([*GRID, f"seed={seed}", "search.strategy=halving",
                                         f"search.min_epochs={min_epochs}"])
            chosen = by_params[tuple(best["params"][p] for p in params)]
            rows.append({
                "seed": seed, "min_epochs": min_epochs,
                "full_best_val_accuracy": full_best["val_accuracy"],
                "halving_choice_full_val_accuracy": float(chosen),
                "gap_points": 100 * (full_best["val_accuracy"] - float(chosen)),
                "epochs_share": epochs / full_epochs, "wall_share": wall / full_wall,
                "full_seconds": full_wall, "halving_seconds": wall,
                "full_test_accuracy": full_best["test_accuracy"], "halving_test_accuracy": best["test_accuracy"],
            })
            r = rows[-1]
            print(f"seed {seed} min_epochs {min_epochs}: gap {r['gap_points']:.2f} points, epochs "
                  f"{100 * r['epochs_share']:.0f}%, wall {r['halving_seconds']:.1f} s vs {r['full_seconds']:.1f} s "
                  f"({100 * r['wall_share']:.0f}%), test {r['halving_test_accuracy']:.4f} vs "
                  f"{r['full_test_accuracy']:.4f}", flush=True)
    table = pd.DataFrame(rows)
    summary = table.groupby("min_epochs")[["gap_points", "epochs_share", "wall_share"]].agg(["mean", "max"])
    print(summary.to_string())
    if args.out:
        Path(args.out).write_text(json.dumps({"runs": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
