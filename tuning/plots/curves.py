"""Figures over epochs: the best configurations' learning curves, the mean curve of each parameter value,
training against validation for the chosen configuration, and the final model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..formatting import param_label
from ..results import Results
from .data import chosen_row, curve_data, curves_by_value, ranked
from .style import BAND, band, epoch_axis, figure, layout, legend_below, legend_rows

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TOP_CONFIGS = 5  # configurations in the learning-curves figure
MAX_COLUMNS = 3  # panels per row in the per-value figure


def plot_learning_curves(results: Results) -> Figure | None:
    """Validation score per epoch of the top configurations: all epochs, and the last half zoomed."""
    board = ranked(results.board).head(TOP_CONFIGS)
    if board.empty:
        return None
    curves = curve_data(results.runs, results.history, results.objective.column, board["config_id"].tolist())
    last = int(curves["epoch"].max())
    fig = figure(12, 5.2)
    full, zoom = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    start = max(1, last // 2)
    chosen = chosen_row(results.board, results.best)["config_id"]
    for i, row in enumerate(board.itertuples()):
        curve = curves[curves["config_id"] == row.config_id]
        label = f"#{row.rank}  {param_label(row._asdict(), results.params)}"
        label += "  (chosen)" if row.config_id == chosen else ""
        for ax in (full, zoom):
            band(ax, curve[curve["epoch"] >= (1 if ax is full else start)], label, f"C{i}",
                 alpha=0.18 if ax is full else 0.08, linewidth=2.4 if i == 0 else 1.4)
    shown = curves[curves["epoch"] >= start]
    low, high = shown["min"].min(), shown["max"].max()
    pad = 0.08 * (high - low) or 0.01
    zoom.set_ylim(low - pad, high + pad)
    zoom.set_title(f"epochs {start}–{last}, zoomed in", fontsize=10)
    full.set_title("all epochs", fontsize=10)
    for ax in (full, zoom):
        epoch_axis(ax)
        ax.set_ylabel(results.objective.label)
        ax.grid(alpha=0.3)
    handles, labels = full.get_legend_handles_labels()
    ncols = 2 if len(labels) == 4 else min(3, len(labels))
    layout(fig, f"Learning curves: {results.objective.label} per epoch, {len(board)} best configurations\n"
           "how each parameter value changes learning: learning_curves_by_param.png",
           legend_rows=legend_rows(len(labels), ncols, title=True), top=0.25, wspace=0.18)
    legend_below(fig, handles, labels, f"rank and parameters (line: mean over repeats, {BAND})", ncols)
    return fig


def plot_learning_curves_by_param(results: Results) -> Figure | None:
    """One panel per searched parameter: the mean validation curve of each of its values (a range in bins),
    averaged over the other parameters and the repeats, so the effect of each parameter on learning shows."""
    if not results.params or results.ok.empty or results.history.empty:
        return None
    import matplotlib as mpl

    column = results.objective.column
    n_cols = min(MAX_COLUMNS, len(results.params))
    n_rows = -(-len(results.params) // n_cols)
    fig = figure(0.6 + 4.4 * n_cols, 1.2 + 3.6 * n_rows)
    axes = fig.subplots(n_rows, n_cols, sharey=True, squeeze=False).ravel()
    cmap = mpl.colormaps["plasma"]
    for ax, param in zip(axes, results.params):
        curves = curves_by_value(results.runs, results.history, param, column)
        values = curves["value"].cat.categories if len(curves) else []
        for k, value in enumerate(values):
            curve = curves[curves["value"] == value]
            color = cmap(0.85 * k / max(len(values) - 1, 1))
            ax.plot(curve["epoch"], curve["mean"], color=color, linewidth=1.8, label=str(value))
        ax.set_title(param, fontsize=11)
        epoch_axis(ax)
        ax.grid(alpha=0.3)
        ax.legend(title=param, fontsize=8, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                  frameon=False)
    for ax in axes[len(results.params):]:
        ax.set_visible(False)
    for ax in axes[::n_cols]:
        ax.set_ylabel(f"mean {results.objective.label}")
    halving = " (under halving, later epochs: promoted configurations only)" if results.rungs is not None else ""
    layout(fig, f"Mean {results.objective.label} per epoch for each value of each parameter\n"
           f"averaged over the other parameters and repeats, ok trials that reached the epoch{halving}",
           top=0.25, right=1.4, wspace=0.5, hspace=0.5)
    return fig


def plot_train_vs_val(results: Results) -> Figure | None:
    """Training vs validation loss (and accuracy) per epoch of the chosen configuration: over-fitting shows."""
    row = chosen_row(results.board, results.best)
    if row is None:
        return None
    metrics = ["loss", "accuracy"] if results.task == "classification" else ["loss"]
    curves = {column: curve_data(results.runs, results.history, column, [row["config_id"]])
              for metric in metrics for column in (metric, f"val_{metric}")}
    best_epoch = int(curves["val_loss"].loc[curves["val_loss"]["mean"].idxmin(), "epoch"])
    fig = figure(6 * len(metrics), 5.2)
    for ax, metric in zip(np.atleast_1d(fig.subplots(1, len(metrics))), metrics):
        band(ax, curves[metric], "training", "C0", linewidth=2)
        band(ax, curves[f"val_{metric}"], "validation", "C1", linewidth=2)
        ax.axvline(best_epoch, color="0.4", linestyle=":", label=f"lowest validation loss (epoch {best_epoch})")
        epoch_axis(ax)
        ax.set_ylabel(results.objective.metric_label(metric))
        ax.set_title(metric, fontsize=10)
        ax.grid(alpha=0.3)
    n = int(curves["loss"]["n"].max())
    layout(fig, f"Chosen configuration ({param_label(row, results.params)}): training vs validation\n"
           + (f"line: mean over {n} repeats, {BAND}" if n > 1 else "one repeat"), legend_rows=1, top=0.25)
    legend_below(fig, *ax.get_legend_handles_labels())
    return fig


def _class_order(labels: np.ndarray) -> list[str]:
    """Class labels sorted numerically when they all read as numbers ('2' before '10'), else as text."""
    unique = sorted(set(labels))
    try:
        return sorted(unique, key=float)
    except ValueError:
        return unique


def _confusion_matrix(ax, true: np.ndarray, predicted: np.ndarray) -> None:
    """Counts of (true, predicted) class pairs, each cell written in a colour that reads on it."""
    classes = _class_order(np.concatenate([true, predicted]))
    counts = (pd.crosstab(pd.Series(true, name="true"), pd.Series(predicted, name="predicted"))
              .reindex(index=classes, columns=classes, fill_value=0).to_numpy())
    image = ax.imshow(counts, cmap="Blues", vmin=0)
    threshold = counts.max() / 2
    for i, j in np.ndindex(counts.shape):
        ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=9,
                color="white" if counts[i, j] > threshold else "black")
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    return image


def plot_final_model(results: Results) -> Figure | None:
    """The final refit's training curves, and its test confusion matrix (or predicted vs true)."""
    best = results.best
    if best is None:
        return None
    history = best.get("final_history") or {}
    predictions = results.predictions
    classification = results.task == "classification"
    curves = [m for m in ("loss", "accuracy") if m in history]
    if not curves and predictions is None:
        return None
    mosaic = [[m, *(["test"] if predictions is not None else [])] for m in curves] or [["test"]]
    ratios = ([1, 1.25] if classification else [1.3, 1]) if len(mosaic[0]) > 1 else None
    fig = figure(11.5 if classification else 10.5, 6 if classification else 5.4)
    axes = fig.subplot_mosaic(mosaic, width_ratios=ratios)
    for metric in curves:
        ax = axes[metric]
        ax.plot(history.get("epoch", range(1, len(history[metric]) + 1)), history[metric], color="C0", linewidth=2)
        epoch_axis(ax)
        ax.set_ylabel(f"training {metric}" + ("" if classification else " (MSE, standardized target)"))
        ax.set_title(f"training {metric} on every non-test row", fontsize=10)
        ax.grid(alpha=0.3)
    if predictions is not None and classification:
        true, predicted = predictions["true"].to_numpy(dtype=str), predictions["predicted"].to_numpy(dtype=str)
        _confusion_matrix(axes["test"], true, predicted)
        axes["test"].set_title(f"confusion matrix on the test split ({len(true)} rows)", fontsize=10)
    elif predictions is not None:
        ax = axes["test"]
        ax.scatter(predictions["true"], predictions["predicted"], s=14, alpha=0.6, color="C0", label="test row")
        low = min(predictions["true"].min(), predictions["predicted"].min())
        high = max(predictions["true"].max(), predictions["predicted"].max())
        ax.plot([low, high], [low, high], color="C3", linestyle="--", label="y = x (perfect)")
        pad = 0.04 * (high - low)
        ax.set(xlim=(low - pad, high + pad), ylim=(low - pad, high + pad), aspect="equal")
        ax.set_xlabel("true target value")
        ax.set_ylabel("predicted target value")
        ax.set_title(f"predicted vs true on the test split ({len(predictions)} rows)", fontsize=10)
        ax.grid(alpha=0.3)
    scores = [f"{name} {best[key]:{spec}}" for key, name, spec in (
        ("test_accuracy", "test accuracy", ".4f"), ("test_rmse", "test RMSE", ".4g"),
        ("test_loss", "test loss" if classification else "test MSE (standardized)", ".4g")) if key in best]
    epochs = f" for {best['epochs']} epochs" if "epochs" in best else ""
    regression_legend = predictions is not None and not classification
    layout(fig, f"Final model ({param_label(best['params'], results.params)}) retrained on every non-test "
           f"row{epochs}\n" + ", ".join(scores), top=0.25, left=0.9, wspace=0.3, hspace=0.55,
           legend_rows=1 if regression_legend else 0)
    if regression_legend:
        legend_below(fig, *axes["test"].get_legend_handles_labels())
    return fig
