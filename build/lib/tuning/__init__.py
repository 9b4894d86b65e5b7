"""The experiment runner: search hyperparameters of the NumPy network in parallel, log, select, test.

    import tuning
    exp = tuning.Experiment.from_dict({"data": {"dataset": "iris"}, "search": {"space": {"lr": [0.01, 0.1]}}})
    result = tuning.run(exp, out="results/iris", n_jobs=2, progress=True)
    result.leaderboard, result.best, result.test_scores, result.plot_learning_curves()
    tuning.load_results("results/iris"); tuning.load_predictor("results/iris/model.npz").predict(rows)

Names are imported on first use, so `import tuning` (and `python main.py --help`) stays quick.
"""

from __future__ import annotations

_EXPORTS = {
    "Experiment": "config", "ConfigError": "errors", "UserError": "errors", "RunFailed": "errors",
    "TuningWarning": "errors", "run": "api", "load_results": "api", "load_predictor": "api",
    "Results": "results", "Predictor": "predict",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tuning' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
