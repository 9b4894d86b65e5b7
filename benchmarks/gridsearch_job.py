"""GridSearchCV(MLPClassifier) doing, as one process, the job `python main.py run` does on the 27-configuration
digits grid: lr x batch_size x hidden_units (3 x 3 x 3), 30 epochs of SGD with momentum 0.9, one fit per
configuration, selection on one holdout validation split, refit on train+val, one test evaluation.

    python benchmarks/gridsearch_job.py [--n-jobs 2] [--seed 0]

The split is the runner's own (a stratified test split, then a stratified validation split of the rest,
both by `train_test_split` with the experiment seed, as tuning/splits.py cuts them) and the scaling the
same MinMaxScaler fitted on training rows. It imports nothing from this project, so its wall time as a
process is scikit-learn's alone; `benchmarks/bench_process.py` times it against the runner, and
`benchmarks/bench_runner.py` reuses its grid and estimator inside one process.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

# The default experiment's space (tuning/schema.py DEFAULTS) and training length.
GRID = {"lr": [0.01, 0.05, 0.1], "batch_size": [16, 32, 64], "hidden_units": [32, 64, 128]}
EPOCHS = 30
TEST_SIZE = VAL_SIZE = 0.2


def runner_split(X: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple:
    """(X_train, y_train, X_val, y_val, X_test, y_test) cut as tuning.splits.split cuts a classification set."""
    from sklearn.model_selection import train_test_split

    rest, test = train_test_split(np.arange(len(y)), test_size=TEST_SIZE, random_state=seed, stratify=y)
    train, val = train_test_split(np.arange(len(rest)), test_size=VAL_SIZE, random_state=seed, stratify=y[rest])
    X_rest, y_rest = X[rest], y[rest]
    return X_rest[train], y_rest[train], X_rest[val], y_rest[val], X[test], y[test]


def grid_search(y_train: np.ndarray, y_val: np.ndarray, n_jobs: int):
    """GridSearchCV over GRID: MinMaxScaler + MLPClassifier(sgd, momentum 0.9, no L2, EPOCHS epochs, no early
    stop), scored on the validation rows (PredefinedSplit over train then val), refit on both."""
    from sklearn.model_selection import GridSearchCV, PredefinedSplit
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    folds = np.r_[np.full(len(y_train), -1), np.zeros(len(y_val), dtype=int)]
    mlp = MLPClassifier(solver="sgd", momentum=0.9, nesterovs_momentum=False, alpha=0.0, max_iter=EPOCHS,
                        early_stopping=False, tol=0.0, n_iter_no_change=10**6, random_state=0)
    grid = {"mlpclassifier__learning_rate_init": GRID["lr"], "mlpclassifier__batch_size": GRID["batch_size"],
            "mlpclassifier__hidden_layer_sizes": [(h,) for h in GRID["hidden_units"]]}
    return GridSearchCV(make_pipeline(MinMaxScaler(), mlp), grid, cv=PredefinedSplit(folds), n_jobs=n_jobs,
                        refit=True)


def fit_and_test(search, X_train, y_train, X_val, y_val, X_test, y_test) -> float:
    """Search and refit on train+val (ConvergenceWarning silenced: 30 epochs is the budget), then test once."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(np.concatenate([X_train, X_val]), np.concatenate([y_train, y_val]))
    return float(search.score(X_test, y_test))


def main() -> None:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-jobs", type=int, default=2, help="GridSearchCV's n_jobs (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="the split's seed (the experiment's seed)")
    args = parser.parse_args()
    from sklearn.datasets import load_digits

    digits = load_digits()
    parts = runner_split(digits.data, digits.target.astype(np.int64), args.seed)
    search = grid_search(parts[1], parts[3], args.n_jobs)
    test_accuracy = fit_and_test(search, *parts)
    print(json.dumps({"best_params": search.best_params_, "val_accuracy": search.best_score_,
                      "test_accuracy": test_accuracy, "seconds": time.perf_counter() - started}, default=str))


if __name__ == "__main__":
    main()
