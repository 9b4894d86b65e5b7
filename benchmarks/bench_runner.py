"""Runner benchmark: this runner vs scikit-learn's GridSearchCV, parallel efficiency, runner overhead.

    python benchmarks/bench_runner.py [--out FILE.json]

1. The 27-configuration digits grid (lr x batch_size x hidden_units, 30 epochs, one fit per
   configuration), selection on one holdout validation split, refit on train+val, one test
   evaluation: this runner against GridSearchCV(MLPClassifier(solver="sgd", momentum=0.9),
   PredefinedSplit), both at n_jobs=2, on the same split and scaling.
2. Parallel efficiency: the default experiment (27 x 2 repeats) at n_jobs=2 against n_jobs=1.
3. The runner's own overhead: wall time minus (sum of trial fit times / workers).
Each figure is the best of a few repeats, measured in this one process.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.gridsearch_job import fit_and_test, grid_search  # noqa: E402
from tuning.config import load_experiment  # noqa: E402
from tuning.datasets import load_dataset  # noqa: E402
from tuning.runner import run_experiment  # noqa: E402
from tuning.splits import split  # noqa: E402


def run_ours(n_jobs: int, repeats: int) -> tuple[float, object]:
    experiment = load_experiment(None, [f"search.repeats={repeats}", f"search.n_jobs={n_jobs}"])
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        # The search, selection, refit and test, as GridSearchCV does them; the plots are a later stage.
        result = run_experiment(experiment, out=Path(folder) / "exp", render_report=False)
        return time.perf_counter() - start, result


def run_sklearn(n_jobs: int) -> tuple[float, float, dict]:
    """benchmarks/gridsearch_job.py's GridSearchCV on the runner's exact split, timed from its fit to its test."""
    experiment = load_experiment()
    splits = split(load_dataset("digits"), 0.2, 0.2, experiment.seed)  # the runner's exact split
    search = grid_search(splits.y_train, splits.y_val, n_jobs)
    start = time.perf_counter()
    test_accuracy = fit_and_test(search, splits.X_train, splits.y_train, splits.X_val, splits.y_val, *splits.test())
    return time.perf_counter() - start, test_accuracy, search.best_params_


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the figures as JSON here")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per figure (best is kept)")
    args = parser.parse_args()

    # Warm-up: the first loky pool start and imports are not what we compare.
    run_ours(2, 1)
    figures: dict[str, dict] = {}

    ours = [run_ours(2, 1) for _ in range(args.repeats)]
    theirs = [run_sklearn(2) for _ in range(args.repeats)]
    ours_wall, ours_result = min(ours, key=lambda r: r[0])
    sk_wall, sk_test, sk_params = min(theirs, key=lambda r: r[0])
    figures["vs_gridsearchcv"] = {
        "configs": 27, "epochs": 30, "n_jobs": 2,
        "runner_seconds": ours_wall, "gridsearchcv_seconds": sk_wall, "speedup": sk_wall / ours_wall,
        "runner_test_accuracy": ours_result.best["test_accuracy"], "gridsearchcv_test_accuracy": sk_test,
        "runner_best": ours_result.best["params"], "gridsearchcv_best": sk_params,
    }

    one = [run_ours(1, 2) for _ in range(args.repeats)]
    two = [run_ours(2, 2) for _ in range(args.repeats)]
    one_wall, _ = min(one, key=lambda r: r[0])
    two_wall, two_result = min(two, key=lambda r: r[0])
    overhead = two_wall - two_result.fit_seconds / two_result.n_workers
    figures["default_experiment"] = {
        "trials": two_result.n_trials, "n_jobs_1_seconds": one_wall, "n_jobs_2_seconds": two_wall,
        "parallel_ratio": two_wall / one_wall,
        "trial_fit_seconds_sum": two_result.fit_seconds, "runner_overhead_seconds": overhead,
        "runner_overhead_share": overhead / two_wall,
        "final_refit_seconds": two_result.best["run"]["refit_seconds"],
        "overhead_share_without_refit": (overhead - two_result.best["run"]["refit_seconds"]) / two_wall,
        "test_accuracy": two_result.best["test_accuracy"],
    }

    vs, de = figures["vs_gridsearchcv"], figures["default_experiment"]
    print(f"27-config digits grid, n_jobs=2: runner {vs['runner_seconds']:.2f} s, GridSearchCV "
          f"{vs['gridsearchcv_seconds']:.2f} s -> {vs['speedup']:.1f}x faster; test accuracy "
          f"{vs['runner_test_accuracy']:.4f} vs {vs['gridsearchcv_test_accuracy']:.4f}")
    print(f"default experiment ({de['trials']} trials): n_jobs=1 {de['n_jobs_1_seconds']:.2f} s, n_jobs=2 "
          f"{de['n_jobs_2_seconds']:.2f} s -> ratio {de['parallel_ratio']:.2f}")
    print(f"runner overhead at n_jobs=2: {de['runner_overhead_seconds']:.2f} s of {de['n_jobs_2_seconds']:.2f} s "
          f"= {100 * de['runner_overhead_share']:.1f}% (of which the final refit {de['final_refit_seconds']:.2f} s; "
          f"without it {100 * de['overhead_share_without_refit']:.1f}%)")
    text = json.dumps(figures, indent=2, default=str)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
