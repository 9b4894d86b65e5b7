"""Figures of an experiment folder, written as PNGs to `<folder>/plots/`.

Reads config.toml, runs.csv and history.csv, and best.json and test_predictions.csv when they are
there (an interrupted experiment has neither: only the final-model figure needs them). Nothing
else in the folder is written. Figures are drawn on Agg canvases through matplotlib's object API,
so no display is needed and no pyplot state is touched.

The numbers behind the figures come from pure functions (`curve_data`, `heatmap_values`,
`trial_scores`) that tests check against pandas directly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .files import atomic_open
from .formatting import format_value, param_label
from .results import Results, read_results
from .store import PLOTS_DIR

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 110
MIN_WIDTH = 8.0  # inches: room for a two-line title
TOP_CONFIGS = 5  # configurations in the learning-curves figure
MAX_LEVELS = 12  # a parameter with more distinct values (a random-search range) is no heatmap axis
MAX_PANELS = 6  # heatmap panels at most (values of the third parameter)
HEATMAP_PREFERENCE = ("lr", "batch_size", "hidden_units")  # x, y, panel when searched
BAND = "band: min–max over repeats"


# --- the numbers -------------------------------------------------------------------------------


def levels(values: pd.Series) -> list:
    """The distinct values of a column, ascending (numbers numerically, text alphabetically)."""
    return sorted(values.dropna().unique().tolist())


def is_geometric(values: list) -> bool:
    """Whether numbers are spaced geometrically (0.01, 0.05, 0.1; 32, 64, 128): a log axis reads them.

    True for positive numbers spanning a factor >= 10, or >= 4 and spaced at least as evenly in log
    as in linear terms.
    """
    if len(values) < 2 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return False
    values = np.sort(np.asarray(values, dtype=float))
    if values[0] <= 0:
        return False
    ratio = values[-1] / values[0]

    def unevenness(gaps: np.ndarray) -> float:
        return float(np.std(gaps) / np.mean(gaps))

    return bool(ratio >= 10 or (ratio >= 4 and unevenness(np.diff(np.log(values))) <= unevenness(np.diff(values))))


def curve_data(runs: pd.DataFrame, history: pd.DataFrame, column: str,
               config_ids: list[int] | None = None) -> pd.DataFrame:
    """Per configuration and epoch, `column` over the ok repeats: mean, std, min, max and n.

    Columns config_id, epoch, mean, std (0 for one repeat), min, max, n; sorted by config and epoch.
    """
    ok = runs.loc[runs["status"] == "ok", ["trial_id", "config_id"]]
    if config_ids is not None:
        ok = ok[ok["config_id"].isin(config_ids)]
    rows = history.merge(ok, on="trial_id")
    stats = rows.groupby(["config_id", "epoch"])[column].agg(["mean", "std", "min", "max", "count"])
    return stats.rename(columns={"count": "n"}).fillna({"std": 0.0}).reset_index()


def heatmap_values(runs: pd.DataFrame, x: str, y: str, panel: str | None, score: str) -> dict:
    """Mean `score` over ok trials by (y, x), one table per value of `panel` (key None without panel).

    Each table has the y values ascending as index and the x values ascending as columns, every
    value present in runs.csv included: a cell without an ok trial is NaN.
    """
    ok = runs[runs["status"] == "ok"]
    tables = {}
    for value in levels(runs[panel]) if panel else [None]:
        rows = ok if panel is None else ok[ok[panel] == value]
        table = rows.groupby([y, x])[score].mean().unstack(x) if len(rows) else pd.DataFrame()
        tables[value] = table.reindex(index=pd.Index(levels(runs[y]), name=y),
                                      columns=pd.Index(levels(runs[x]), name=x))
    return tables


def trial_scores(runs: pd.DataFrame, param: str, score: str) -> dict:
    """The `score` of every ok trial, by value of `param` (ascending): {value: array}."""
    ok = runs[runs["status"] == "ok"]
    return {value: ok.loc[ok[param] == value, score].to_numpy(dtype=float) for value in levels(runs[param])}


def heatmap_axes(runs: pd.DataFrame, params: list[str]) -> tuple[str, str, str | None] | None:
    """The heatmap's (x, y, panel) params: lr x batch_size by hidden_units when searched, else the
    first searched params with 2..MAX_LEVELS values; None when fewer than two qualify."""
    usable = [p for p in params if 2 <= runs[p].nunique() <= MAX_LEVELS]
    ordered = [p for p in HEATMAP_PREFERENCE if p in usable] + [p for p in usable if p not in HEATMAP_PREFERENCE]
    if len(ordered) < 2:
        return None
    panels = [p for p in ordered[2:] if runs[p].nunique() <= MAX_PANELS]
    return ordered[0], ordered[1], panels[0] if panels else None


# --- shared figure helpers -------------------------------------------------------------------


def axis_label(param: str, values: list) -> str:
    """The axis label of a parameter, saying '(log scale)' when its values are geometric."""
    return f"{param} (log scale)" if is_geometric(values) else param


def _figure(width: float, height: float) -> Figure:
    """A figure on an Agg canvas (no display, no pyplot) with constrained layout, wide enough for a title."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(width, MIN_WIDTH), height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _band(ax: Axes, curve: pd.DataFrame, label: str, color: str, alpha: float = 0.18, **line) -> None:
    """A mean line with its min–max band."""
    ax.fill_between(curve["epoch"], curve["min"], curve["max"], color=color, alpha=alpha, linewidth=0)
    ax.plot(curve["epoch"], curve["mean"], color=color, label=label, **line)


def _ranked(results: Results) -> pd.DataFrame:
    """The leaderboard's configurations that have a score (at least one ok repeat), best first."""
    board = results.board
    return board[board["mean"].notna()] if len(board) else board


# --- the figures -----------------------------------------------------------------------------


def plot_learning_curves(results: Results) -> Figure | None:
    """Validation score per epoch of the top configurations: all epochs, and the last half zoomed."""
    board = _ranked(results).head(TOP_CONFIGS)
    if board.empty:
        return None
    curves = curve_data(results.runs, results.history, results.objective.column, board["config_id"].tolist())
    last = int(curves["epoch"].max())
    fig = _figure(12, 5.2)
    full, zoom = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    start = max(1, last // 2)
    for i, row in enumerate(board.itertuples()):
        curve = curves[curves["config_id"] == row.config_id]
        label = f"#{row.rank}  {param_label(row._asdict(), results.params)}"
        for ax in (full, zoom):
            _band(ax, curve[curve["epoch"] >= (1 if ax is full else start)], label, f"C{i}",
                  alpha=0.18 if ax is full else 0.08, linewidth=2.4 if i == 0 else 1.4)
    shown = curves[curves["epoch"] >= start]
    low, high = shown["min"].min(), shown["max"].max()
    pad = 0.08 * (high - low) or 0.01
    zoom.set_ylim(low - pad, high + pad)
    zoom.set_title(f"epochs {start}–{last}, zoomed in", fontsize=10)
    full.set_title("all epochs", fontsize=10)
    for ax in (full, zoom):
        ax.set_xlabel("epoch")
        ax.set_ylabel(results.objective.label)
        ax.grid(alpha=0.3)
    handles, labels = full.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2 if len(labels) == 4 else min(3, len(labels)),
               fontsize=9, title=f"rank and parameters (line: mean over repeats, {BAND})", title_fontsize=9)
    fig.suptitle(f"Learning curves: {results.objective.label} per epoch, {len(board)} best configurations",
                 fontsize=13)
    return fig


def plot_train_vs_val(results: Results) -> Figure | None:
    """Training vs validation loss (and accuracy) per epoch of the best configuration: over-fitting shows."""
    board = _ranked(results)
    if board.empty:
        return None
    chosen = board[board["config_id"] == (results.best or {}).get("config_id")]  # best.json's choice, if stored
    row = (chosen if len(chosen) else board).iloc[0]
    metrics = ["loss", "accuracy"] if results.task == "classification" else ["loss"]
    curves = {column: curve_data(results.runs, results.history, column, [row["config_id"]])
              for metric in metrics for column in (metric, f"val_{metric}")}
    best_epoch = int(curves["val_loss"].loc[curves["val_loss"]["mean"].idxmin(), "epoch"])
    fig = _figure(6 * len(metrics), 4.8)
    for ax, metric in zip(np.atleast_1d(fig.subplots(1, len(metrics))), metrics):
        _band(ax, curves[metric], f"training {metric}", "C0", linewidth=2)
        _band(ax, curves[f"val_{metric}"], f"validation {metric}", "C1", linewidth=2)
        ax.axvline(best_epoch, color="0.4", linestyle=":", label=f"lowest validation loss (epoch {best_epoch})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(results.objective.metric_label(metric))
        ax.set_title(metric, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right" if metric == "loss" else "lower right", fontsize=9)
    n = int(curves["loss"]["n"].max())
    fig.suptitle(f"Best configuration ({param_label(row, results.params)}): training vs validation\n"
                 + (f"line: mean over {n} repeats, {BAND}" if n > 1 else "one repeat"), fontsize=12)
    return fig


def _annotate_cells(ax: Axes, table: pd.DataFrame, cmap, norm, text: Callable[[float], str]) -> None:
    """Write each cell's number in a colour that reads on its background; '—' for empty cells."""
    for i, j in np.ndindex(table.shape):
        value = table.iat[i, j]
        if np.isnan(value):
            ax.text(j, i, "—", ha="center", va="center", color="0.45", fontsize=11)
            continue
        r, g, b, _ = cmap(norm(value))
        ax.text(j, i, text(value), ha="center", va="center", fontsize=10,
                color="black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white")


def plot_heatmap(results: Results) -> Figure | None:
    """Mean validation score over two searched params, one panel per value of a third."""
    chosen = heatmap_axes(results.runs, results.params)
    if chosen is None or results.ok.empty:
        return None
    import matplotlib as mpl
    from matplotlib.patches import Rectangle

    x, y, panel = chosen
    tables = heatmap_values(results.runs, x, y, panel, results.objective.column)
    cells = np.concatenate([t.to_numpy(dtype=float).ravel() for t in tables.values()])
    norm = mpl.colors.Normalize(np.nanmin(cells), np.nanmax(cells))
    higher = results.objective.higher_is_better
    cmap = mpl.colormaps["viridis" if higher else "viridis_r"].with_extremes(bad="0.94")
    best_value = np.nanmax(cells) if higher else np.nanmin(cells)
    text = (lambda v: f"{v:.3f}") if higher else (lambda v: f"{v:.4f}" if v < 10 else f"{v:.4g}")
    n_cols = min(3, len(tables))
    n_rows = -(-len(tables) // n_cols)
    n_y, n_x = next(iter(tables.values())).shape
    fig = _figure(1.2 + n_cols * max(3.4, 0.8 * n_x + 1.3), 1.3 + n_rows * max(3.0, 0.55 * n_y + 1.5))
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    for ax, (value, table) in zip(axes, tables.items()):
        image = ax.imshow(np.ma.masked_invalid(table.to_numpy(dtype=float)), cmap=cmap, norm=norm,
                          origin="lower", aspect="auto")
        _annotate_cells(ax, table, cmap, norm, text)
        for i, j in zip(*np.nonzero(table.to_numpy(dtype=float) == best_value)):
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2.5))
        ax.set_xticks(range(table.shape[1]), [format_value(v) for v in table.columns])
        ax.set_yticks(range(table.shape[0]), [format_value(v) for v in table.index])
        ax.set_xlabel(axis_label(x, list(table.columns)))
        ax.set_ylabel(axis_label(y, list(table.index)))
        if panel:
            ax.set_title(f"{panel} = {format_value(value)}", fontsize=10)
    for ax in axes[len(tables):]:
        ax.set_visible(False)
    fig.colorbar(image, ax=axes[: len(tables)].tolist(),
                 label=f"mean {results.objective.label}\n({results.objective.direction})",
                 shrink=0.9)
    others = [p for p in results.params if p not in chosen]
    averaged = "repeats" + "".join(f", {p}" for p in others)
    fig.suptitle(f"Mean {results.objective.label}\nby {x} and {y}" + (f", one panel per {panel}" if panel else "")
                 + f"; ok trials only, averaged over {averaged}\n"
                 "red box: best cell; —: no ok trial (not run, failed or diverged)", fontsize=12)
    return fig


def plot_param_effects(results: Results) -> Figure | None:
    """One panel per searched parameter: every ok trial's validation score by value, with the mean."""
    if not results.params or results.ok.empty:
        return None
    n_cols = min(4, len(results.params))
    n_rows = -(-len(results.params) // n_cols)
    fig = _figure(0.6 + 3.6 * n_cols, 0.9 + 3.4 * n_rows)
    axes = fig.subplots(n_rows, n_cols, sharey=True, squeeze=False).ravel()
    rng = np.random.default_rng(0)  # jitter only; fixed so redrawing gives the same picture
    for ax, param in zip(axes, results.params):
        scores = trial_scores(results.runs, param, results.objective.column)
        values = list(scores)
        if len(values) > MAX_LEVELS:
            ok = results.ok  # a continuous range: trials at their real values
            ax.scatter(ok[param], ok[results.objective.column], s=16, alpha=0.6, color="C0")
            ax.set_xscale("log" if is_geometric(values) else "linear")
        else:
            for k, trial in enumerate(scores.values()):
                ax.scatter(k + rng.uniform(-0.18, 0.18, len(trial)), trial, s=16, alpha=0.55, color="C0",
                           label="trial" if k == 0 else None)
                if not len(trial):
                    ax.text(k, 0.5, "no ok trial", transform=ax.get_xaxis_transform(), ha="center", color="0.45")
            means = [trial.mean() if len(trial) else np.nan for trial in scores.values()]
            ax.plot(range(len(values)), means, color="C3", marker="D", markersize=7, linewidth=1.2, label="mean")
            ax.set_xticks(range(len(values)), [format_value(v) for v in values])
            ax.set_xlim(-0.5, len(values) - 0.5)
        ax.set_xlabel(axis_label(param, values))
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[len(results.params):]:
        ax.set_visible(False)
    for ax in axes[::n_cols]:
        ax.set_ylabel(results.objective.label)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=9)
    excluded = len(results.runs) - len(results.ok)
    note = f"; {excluded} failed/diverged trial{'s' * (excluded != 1)} not shown" if excluded else ""
    fig.suptitle(f"Effect of each parameter on the {results.objective.label}\n"
                 f"every ok trial ({len(results.ok)}) by value, jittered sideways{note}", fontsize=12)
    return fig


def _class_order(labels: np.ndarray) -> list[str]:
    """Class labels sorted numerically when they all read as numbers ('2' before '10'), else as text."""
    unique = sorted(set(labels))
    try:
        return sorted(unique, key=float)
    except ValueError:
        return unique


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
    fig = _figure(11.5 if classification else 10.5, 6 if classification else 5)
    axes = fig.subplot_mosaic(mosaic, width_ratios=ratios)
    for metric in curves:
        ax = axes[metric]
        ax.plot(history.get("epoch", range(1, len(history[metric]) + 1)), history[metric], color="C0", linewidth=2)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"training {metric}" + ("" if classification else " (MSE, standardized target)"))
        ax.set_title(f"training {metric} on every non-test row", fontsize=10)
        ax.grid(alpha=0.3)
    if predictions is not None and classification:
        from sklearn.metrics import ConfusionMatrixDisplay

        true, predicted = predictions["true"].to_numpy(dtype=str), predictions["predicted"].to_numpy(dtype=str)
        classes = _class_order(np.concatenate([true, predicted]))
        ConfusionMatrixDisplay.from_predictions(true, predicted, labels=classes, ax=axes["test"], cmap="Blues",
                                                colorbar=False)
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
        ax.legend(loc="upper left", fontsize=9)
        ax.grid(alpha=0.3)
    scores = [f"{name} {best[key]:{spec}}" for key, name, spec in (
        ("test_accuracy", "test accuracy", ".4f"), ("test_rmse", "test RMSE", ".4g"),
        ("test_loss", "test loss" if classification else "test MSE (standardized)", ".4g")) if key in best]
    epochs = f" for {best['epochs']} epochs" if "epochs" in best else ""
    fig.suptitle(f"Final model ({param_label(best['params'], results.params)}) retrained on every non-test "
                 f"row{epochs}\n" + ", ".join(scores), fontsize=12)
    return fig


def rung_scores(rungs: pd.DataFrame, score: str) -> pd.DataFrame:
    """Mean `score` over ok repeats per configuration and rung, with the epochs trained: one row each."""
    ok = rungs[rungs["status"] == "ok"]
    return ok.groupby(["config_id", "rung"]).agg(mean=(score, "mean"), epochs=("epochs", "max")).reset_index()


def plot_rungs(results: Results) -> Figure | None:
    """Successive halving: every candidate's score at each rung; lines follow the promoted ones."""
    if results.rungs is None or results.rungs.empty:
        return None
    scores = rung_scores(results.rungs, results.objective.column)
    if scores.empty:
        return None
    fig = _figure(9, 5.5)
    ax = fig.subplots()
    rng = np.random.default_rng(0)  # jitter only
    last_rung = int(scores["rung"].max())
    for _, rows in scores.groupby("config_id"):
        x = rows["rung"].to_numpy() + rng.uniform(-0.12, 0.12, len(rows))
        reached = int(rows["rung"].max())
        if reached > 0:  # promoted at least once: a line through its rungs
            ax.plot(x, rows["mean"], color="C3" if reached == last_rung else "C0",
                    alpha=0.9 if reached == last_rung else 0.45, linewidth=1.6 if reached == last_rung else 1)
        # A point is grey where the configuration stopped, blue where it went on, red on the finalists.
        colors = ["C3" if reached == last_rung else "0.55" if r == reached else "C0" for r in rows["rung"]]
        ax.scatter(x, rows["mean"], s=14, color=colors, zorder=3)
    epochs = scores.groupby("rung")["epochs"].max()
    counts = scores.groupby("rung").size()
    ax.set_xticks(epochs.index, [f"rung {r}\n{epochs[r]} epochs\n{counts[r]} configs" for r in epochs.index])
    ax.set_xlabel("rung (epochs trained so far, configurations trained)")
    ax.set_ylabel(f"mean {results.objective.label} over repeats")
    ax.grid(alpha=0.3)
    from matplotlib.lines import Line2D

    ax.legend(handles=[Line2D([], [], color="C3", marker="o", label="reached the last rung"),
                       Line2D([], [], color="C0", marker="o", alpha=0.6, label="promoted, later stopped"),
                       Line2D([], [], color="0.55", marker="o", linestyle="", label="stopped at this rung")],
              loc="lower right", fontsize=9)
    fig.suptitle(f"Successive halving: each configuration's {results.objective.label} per rung\n"
                 f"the best 1/{results.experiment.search['eta']} of each rung go on training from where they stopped",
                 fontsize=12)
    return fig


FIGURES: dict[str, Callable[[Results], Figure | None]] = {
    "rungs.png": plot_rungs,
    "learning_curves.png": plot_learning_curves,
    "train_vs_val.png": plot_train_vs_val,
    "heatmap.png": plot_heatmap,
    "param_effects.png": plot_param_effects,
    "final_model.png": plot_final_model,
}


def draw_plots(results: Results | Path) -> list[Path]:
    """Draw every figure the folder's files allow into `<folder>/plots/`; return the paths written.

    A figure that cannot be drawn (no best.json, fewer than two searched parameters for the heatmap,
    no ok trial) is skipped, and an old PNG of that name is removed so the folder never shows stale
    results. runs.csv and history.csv are only read.
    """
    if not isinstance(results, Results):
        results = read_results(results)
    out = results.folder / PLOTS_DIR
    out.mkdir(exist_ok=True)
    written = []
    for name, draw in FIGURES.items():
        fig = draw(results)
        path = out / name
        if fig is None:
            path.unlink(missing_ok=True)
            continue
        with atomic_open(path, "wb") as f:  # a full disk leaves the old PNG, never half a new one
            fig.savefig(f, format="png")
        written.append(path)
    return written
