"""Figures of an experiment folder, written as PNGs to `<folder>/plots/`.

Reads config.toml, runs.csv and history.csv, data.json, importance (from runs.csv), and best.json and
test_predictions.csv when they are there (an interrupted experiment has neither: only the final-model
figure needs them). Nothing else in the folder is written. Figures are drawn on Agg canvases through
matplotlib's object API, so no display is needed and no pyplot state is touched.

The numbers behind the figures come from pure functions in `data` that tests check against pandas.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..files import atomic_open
from ..results import Results, read_results
from ..store import PLOTS_DIR
from .curves import plot_final_model, plot_learning_curves, plot_learning_curves_by_param, plot_train_vs_val
from .data import curve_data, curves_by_value, heatmap_axes, heatmap_values, is_geometric
from .params import plot_heatmap, plot_importance, plot_parallel_coordinates, plot_param_effects
from .rungs import plot_rungs

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["FIGURES", "curve_data", "curves_by_value", "draw_plots", "heatmap_axes", "heatmap_values",
           "is_geometric"]

FIGURES: dict[str, Callable[[Results], Figure | None]] = {
    "rungs.png": plot_rungs,
    "learning_curves.png": plot_learning_curves,
    "learning_curves_by_param.png": plot_learning_curves_by_param,
    "train_vs_val.png": plot_train_vs_val,
    "heatmap.png": plot_heatmap,
    "param_effects.png": plot_param_effects,
    "parallel_coordinates.png": plot_parallel_coordinates,
    "importance.png": plot_importance,
    "final_model.png": plot_final_model,
}


# Two even shares of the drawing for two worker processes (seconds on the default experiment: importance's
# fANOVA with its imports 1.5, the other figures 0.2-0.45 each).
SHARES = (("importance.png", "parallel_coordinates.png", "train_vs_val.png"),
          ("heatmap.png", "final_model.png", "learning_curves.png", "learning_curves_by_param.png",
           "param_effects.png", "rungs.png"))


def draw_plots(results: Results | Path, pool=None) -> list[Path]:
    """Draw every figure the folder's files allow into `<folder>/plots/`; return the paths written.

    A figure that cannot be drawn (no best.json, fewer than two searched parameters for the heatmap,
    no ok trial) is skipped, and an old PNG of that name is removed so the folder never shows stale
    results. runs.csv and history.csv are only read. With `pool` (a concurrent.futures executor of
    worker processes, such as the search's), the figures are drawn there in two tasks at once, from
    the same files, into the same PNGs; this process then never imports matplotlib.
    """
    if not isinstance(results, Results):
        results = read_results(results)
    (results.folder / PLOTS_DIR).mkdir(exist_ok=True)
    if pool is None:
        drawn = _draw(results, list(FIGURES))
    else:
        tasks = [pool.submit(_draw_in_worker, results.folder, share) for share in SHARES]
        drawn = []
        for task in tasks:
            names, importance = task.result()
            drawn += names
            if importance is not None:  # computed there for its figure: the report needs it too
                results.__dict__["importance"] = importance
    return [results.folder / PLOTS_DIR / name for name in FIGURES if name in drawn]


def _draw(results: Results, names: list[str]) -> list[str]:
    """Draw the named figures of `results` (removing the PNG of each that cannot be drawn); the names drawn."""
    drawn = []
    for name in names:
        fig = FIGURES[name](results)
        path = results.folder / PLOTS_DIR / name
        if fig is None:
            path.unlink(missing_ok=True)
            continue
        with atomic_open(path, "wb") as f:  # a full disk leaves the old PNG, never half a new one
            fig.savefig(f, format="png", pil_kwargs={"compress_level": 1})  # the same pixels, 9% larger, faster
        drawn.append(name)
    return drawn


def _draw_in_worker(folder: Path, names: tuple[str, ...]):
    """A worker's task: read the folder, draw its share of the figures; the names drawn, and the parameter
    importance if drawing needed it (None otherwise)."""
    results = read_results(folder)
    return _draw(results, list(names)), results.__dict__.get("importance")
