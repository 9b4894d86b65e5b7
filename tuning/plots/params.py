"""Figures over the searched parameters: the heatmap of two (panels by a third), every trial by value of
each, one line per configuration across all of them, and how much of the score each one explains."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..advice import SAMPLE_METRICS
from ..formatting import format_value
from ..results import Results
from .data import (
    MAX_LEVELS,
    cell_tables,
    chosen_row,
    heatmap_axes,
    heatmap_values,
    is_geometric,
    is_numeric,
    levels,
    ranked,
    tied_configs,
    trial_scores,
)
from .style import (
    CHOSEN_COLOR,
    TIED_COLOR,
    categorical_label,
    figure,
    layout,
    legend_below,
    log_locator,
    numeric_label,
    readable_ticks,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CHOSEN, TIED = "chosen configuration", "tied with the chosen (within one validation row)"
UNUSED = -0.12  # where a parallel-coordinates line crosses an axis whose setting it does not use


def _rows_note(results: Results, low: float, high: float, text: Callable[[float], str]) -> str:
    """'colour range 0.931–0.972: 12 of 288 validation rows' (rows only for scores counted in rows)."""
    note = f"colour range {text(low)}–{text(high)}"
    n = results.validation_rows
    if results.objective.metric in SAMPLE_METRICS and n:
        note += f": {format_value(round((high - low) * n, 1))} of {n} validation rows"
    return note


def _ties_note(results: Results, tied: pd.DataFrame) -> str:
    n = results.validation_rows
    if results.objective.metric not in SAMPLE_METRICS or not n:
        return ""
    if tied.empty:
        return "\nno other configuration within one validation row of it"
    return (f"\ndashed: {len(tied)} more within one validation row ({100 / n:.2g} points) of it, "
            "too close to tell apart")


def _annotate_cells(ax: Axes, table: pd.DataFrame, cmap, norm, text: Callable[[float], str],
                    epochs: pd.DataFrame | None) -> None:
    """Write each cell's number (and under halving the epochs behind it) in a colour that reads on its
    background; '—' for empty cells."""
    for i, j in np.ndindex(table.shape):
        value = table.iat[i, j]
        if np.isnan(value):
            ax.text(j, i, "—", ha="center", va="center", color="0.45", fontsize=11)
            continue
        r, g, b, _ = cmap(norm(value))
        label = text(value) + (f"\n{epochs.iat[i, j]} ep" if epochs is not None else "")
        ax.text(j, i, label, ha="center", va="center", fontsize=10 if epochs is None else 9,
                color="black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white")


def _epoch_cells(results: Results, x: str, y: str, panel: str | None) -> dict | None:
    """Under successive halving, per cell the epochs its score was reached after ('30', or '3–30' when its
    configurations stopped at different rungs); None for other searches."""
    if "rung" not in results.runs.columns:
        return None
    low, high = (cell_tables(results.ok, results.runs, x, y, panel, "epochs", how) for how in ("min", "max"))

    def span(a: float, b: float) -> str:
        return "" if np.isnan(a) else f"{a:.0f}" if a == b else f"{a:.0f}–{b:.0f}"

    return {value: pd.DataFrame([[span(a, b) for a, b in zip(*rows)] for rows in zip(low[value].to_numpy(float),
                                                                                      high[value].to_numpy(float))])
            for value in low}


def plot_heatmap(results: Results) -> Figure | None:
    """Mean validation score over two searched params, one panel per value of a third; the chosen
    configuration's cell boxed, the cells of configurations tied with it boxed lighter."""
    chosen_axes = heatmap_axes(results.runs, results.params)
    if chosen_axes is None or results.ok.empty:
        return None
    import matplotlib as mpl
    from matplotlib.patches import Rectangle

    x, y, panel = chosen_axes
    tables = heatmap_values(results.runs, x, y, panel, results.objective.column)
    epochs = _epoch_cells(results, x, y, panel)
    cells = np.concatenate([t.to_numpy(dtype=float).ravel() for t in tables.values()])
    low, high = np.nanmin(cells), np.nanmax(cells)
    norm = mpl.colors.Normalize(low, high)
    higher = results.objective.higher_is_better
    cmap = mpl.colormaps["viridis" if higher else "viridis_r"].with_extremes(bad="0.94")
    text = (lambda v: f"{v:.3f}") if higher else (lambda v: f"{v:.4f}" if v < 10 else f"{v:.4g}")
    chosen = chosen_row(results.board, results.best)
    tied = tied_configs(results.board, results.runs, chosen, results.objective.metric, results.validation_rows)

    def cell(row) -> tuple:
        return (row[panel] if panel else None, row[y], row[x])

    boxes = {cell(row): TIED for _, row in tied.iterrows()} | {cell(chosen): CHOSEN}
    others = [p for p in results.params if p not in chosen_axes]
    averaged = "repeats" + "".join(f", {p}" for p in others)
    where = "the cell holding the chosen configuration" if others else "the chosen configuration"
    halving = ("\nsuccessive halving: each cell is scored at the last rung its configuration reached\n"
               "(epochs under the score); fewer epochs score lower for that alone") if epochs is not None else ""
    title = (f"Mean {results.objective.label} by {x} and {y}" + (f", one panel per {panel}" if panel else "")
             + f"\nok trials only, averaged over {averaged}\n"
             f"red box: {where}; —: no ok trial{_ties_note(results, tied)}{halving}")
    n_cols = min(3, len(tables))
    n_rows = -(-len(tables) // n_cols)
    n_y, n_x = next(iter(tables.values())).shape
    fig = figure(1.2 + n_cols * max(3.4, 0.8 * n_x + 1.3),
                 1.2 + 0.22 * title.count("\n") + n_rows * max(3.0, 0.55 * n_y + 1.5))
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    for ax, (value, table) in zip(axes, tables.items()):
        image = ax.imshow(np.ma.masked_invalid(table.to_numpy(dtype=float)), cmap=cmap, norm=norm,
                          origin="lower", aspect="auto")
        _annotate_cells(ax, table, cmap, norm, text, None if epochs is None else epochs[value])
        for i, j in np.ndindex(table.shape):
            kind = boxes.get((value, table.index[i], table.columns[j]))
            if kind:
                ax.add_patch(Rectangle((j - 0.46, i - 0.46), 0.92, 0.92, fill=False, label=kind,
                                       edgecolor=CHOSEN_COLOR if kind == CHOSEN else TIED_COLOR,
                                       linewidth=3 if kind == CHOSEN else 2, linestyle="-" if kind == CHOSEN else "--",
                                       zorder=3 if kind == CHOSEN else 2))
        ax.set_xticks(range(table.shape[1]), [format_value(v) for v in table.columns])
        ax.set_yticks(range(table.shape[0]), [format_value(v) for v in table.index])
        ax.set_xlabel(categorical_label(x))
        ax.set_ylabel(categorical_label(y))
        if panel:
            ax.set_title(f"{panel} = {format_value(value)}", fontsize=10)
    for ax in axes[len(tables):]:
        ax.set_visible(False)
    layout(fig, title, fontsize=11, top=0.25 if panel else 0, left=0.9, right=0.95, wspace=0.3, hspace=0.55)
    fig.colorbar(image, ax=axes[: len(tables)].tolist(), shrink=0.9, fraction=0.06, pad=0.03,
                 label=f"mean {results.objective.label} ({results.objective.direction})\n"
                       + _rows_note(results, low, high, text))
    return fig


def plot_param_effects(results: Results) -> Figure | None:
    """One panel per searched parameter: every ok trial's validation score by value, with the mean, and the
    chosen configuration's trials marked."""
    if not results.params or results.ok.empty:
        return None
    n_cols = min(4, len(results.params))
    n_rows = -(-len(results.params) // n_cols)
    fig = figure(0.6 + 3.6 * n_cols, 1.2 + 3.4 * n_rows)
    axes = fig.subplots(n_rows, n_cols, sharey=True, squeeze=False).ravel()
    rng = np.random.default_rng(0)  # jitter only; fixed so redrawing gives the same picture
    column = results.objective.column
    chosen = chosen_row(results.board, results.best)
    picked = results.ok[results.ok["config_id"] == chosen["config_id"]]
    for ax, param in zip(axes, results.params):
        scores = trial_scores(results.runs, param, column)
        values = list(scores)
        if len(values) > MAX_LEVELS and is_numeric(values):
            ok = results.ok  # a continuous range: trials at their real values
            log = is_geometric(values)
            ax.scatter(ok[param], ok[column], s=16, alpha=0.6, color="C0", label="trial")
            ax.scatter(picked[param], picked[column], s=90, marker="*", color=CHOSEN_COLOR, zorder=3, label=CHOSEN)
            ax.set_xscale("log" if log else "linear")
            readable_ticks(ax, "x", log)
            ax.set_xlabel(numeric_label(param, log))
        else:
            position = {value: k for k, value in enumerate(values)}
            for k, trial in enumerate(scores.values()):
                ax.scatter(k + rng.uniform(-0.18, 0.18, len(trial)), trial, s=16, alpha=0.55, color="C0",
                           label="trial" if k == 0 else None)
                if not len(trial):
                    ax.text(k, 0.5, "no ok trial", transform=ax.get_xaxis_transform(), ha="center", color="0.45")
            means = [trial.mean() if len(trial) else np.nan for trial in scores.values()]
            ax.plot(range(len(values)), means, color="C3", marker="D", markersize=7, linewidth=1.2, label="mean")
            if picked[param].notna().all():
                ax.scatter(picked[param].map(position), picked[column], s=90, marker="*", color=CHOSEN_COLOR,
                           zorder=3, label=CHOSEN)
            ax.set_xticks(range(len(values)), [format_value(v) for v in values])
            ax.set_xlim(-0.5, len(values) - 0.5)
            ax.set_xlabel(categorical_label(param))
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[len(results.params):]:
        ax.set_visible(False)
    for ax in axes[::n_cols]:
        ax.set_ylabel(results.objective.label)
    handles = {label: handle for ax in axes for handle, label in zip(*ax.get_legend_handles_labels())}
    excluded = len(results.runs) - len(results.ok)
    note = f"; {excluded} failed/diverged trial{'s' * (excluded != 1)} not shown" if excluded else ""
    layout(fig, f"Effect of each parameter on the {results.objective.label}\n"
           f"every ok trial ({len(results.ok)}) by value, jittered sideways{note}", legend_rows=1, wspace=0.08,
           hspace=0.5)
    legend_below(fig, list(handles.values()), list(handles), ncols=len(handles))
    return fig


def _coordinate(values: pd.Series) -> tuple[np.ndarray, list[tuple[float, str]], str]:
    """A parallel-coordinates axis: each value's height in [0, 1], the ticks (height, text), and its kind:
    'log' or 'linear' for numbers drawn to scale, 'categories' for text and layer widths evenly spaced.
    A setting a configuration does not use sits below the axis, at UNUSED, ticked '—'."""
    distinct = levels(values)
    unused = [(UNUSED, "—")] if values.isna().any() else []
    if is_numeric(distinct) and len(distinct) > 1:
        log = is_geometric(distinct)
        scale = np.log if log else (lambda v: v)
        low, high = scale(min(distinct)), scale(max(distinct))
        height = (scale(values.to_numpy(dtype=float)) - low) / (high - low)
        marks = distinct if len(distinct) <= MAX_LEVELS else _range_marks(min(distinct), max(distinct), log)
        ticks = [(float((scale(v) - low) / (high - low)), format_value(v)) for v in marks]
        if len(distinct) > MAX_LEVELS:  # a range: its ends, and round values not crowding them
            ticks = [t for t in ticks if t[0] in (0.0, 1.0) or 0.07 < t[0] < 0.93]
        return np.where(values.isna(), UNUSED, height), ticks + unused, "log" if log else "linear"
    slots = {value: k / max(len(distinct) - 1, 1) if len(distinct) > 1 else 0.5 for k, value in enumerate(distinct)}
    height = values.map(slots).fillna(UNUSED).to_numpy(dtype=float)
    return height, [(slots[v], format_value(v)) for v in distinct] + unused, "categories"


def _range_marks(low: float, high: float, log: bool) -> list[float]:
    """A few round values between a range's ends, for its axis's ticks."""
    from matplotlib.ticker import MaxNLocator

    locator = log_locator(low, high) if log else MaxNLocator(5)
    inside = [float(f"{v:.3g}") for v in locator.tick_values(low, high) if low <= v <= high]
    return sorted({low, *inside, high})


def plot_parallel_coordinates(results: Results) -> Figure | None:
    """One line per configuration across every searched parameter and its mean validation score, coloured by
    that score (best drawn last, on top), the chosen configuration in black over all."""
    board = ranked(results.board)
    if board.empty or not results.params:
        return None
    import matplotlib as mpl

    column, higher = results.objective.column, results.objective.higher_is_better
    axes_data = [_coordinate(board[p]) for p in results.params]
    scores = board["mean"].to_numpy(dtype=float)
    low, high = scores.min(), scores.max()

    def score_height(v):  # the better, the higher: a lower-is-better score's axis runs downwards
        share = (v - low) / (high - low) if high > low else np.full(np.shape(v), 0.5)
        return share if higher else 1 - share

    score_ticks = [(float(score_height(v)), f"{v:.4g}") for v in (np.linspace(low, high, 5) if high > low else [low])]
    heights = np.column_stack([*(h for h, _, _ in axes_data), score_height(scores)])
    names = [f"{p}\n({kind})" for p, (_, _, kind) in zip(results.params, axes_data)] + [f"mean {column}\n(best on top)"]
    ticks = [t for _, t, _ in axes_data] + [score_ticks]
    norm = mpl.colors.Normalize(low, high)
    cmap = mpl.colormaps["viridis" if higher else "viridis_r"]
    fig = figure(1.5 + 2.0 * len(names), 5.6)
    ax = fig.subplots()
    order = np.argsort(scores if higher else -scores, kind="stable")  # best last, drawn on top
    xs = np.arange(len(names))
    for k in order:
        ax.plot(xs, heights[k], color=cmap(norm(scores[k])), alpha=0.75, linewidth=1.3)
    chosen = chosen_row(results.board, results.best)
    at = int(np.flatnonzero(board["config_id"].to_numpy() == chosen["config_id"])[0])
    ax.plot(xs, heights[at], color="black", linewidth=3.2, zorder=4, label=CHOSEN)
    ax.plot(xs, heights[at], color=CHOSEN_COLOR, linewidth=1.4, zorder=5)
    for x, axis_ticks in zip(xs, ticks):
        ax.axvline(x, color="0.35", linewidth=1, zorder=1)
        for height, label in axis_ticks:
            ax.text(x - 0.04, height, label, ha="right", va="center", fontsize=8, zorder=6,
                    bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.7})
    ax.set_xticks(xs, names, fontsize=9)
    ax.xaxis.tick_top()
    ax.set_yticks([])
    ax.set_xlim(-0.5, len(names) - 0.6)
    ax.set_ylim(UNUSED - 0.06 if board[results.params].isna().any(axis=None) else -0.05, 1.05)
    for side in ("left", "right", "bottom", "top"):
        ax.spines[side].set_visible(False)
    layout(fig, f"Every configuration ({len(board)}) across the searched parameters, coloured by its mean "
           f"{results.objective.label}\nlog: drawn to a log scale; categories: evenly spaced; "
           "—: a setting the configuration does not use", fontsize=11, legend_rows=1, top=0.45, left=0.3,
           bottom=0.1, right=0.9)
    fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.85, fraction=0.04, pad=0.02,
                 label=f"mean {results.objective.label} ({results.objective.direction})")
    legend_below(fig, *ax.get_legend_handles_labels())
    return fig


def plot_importance(results: Results) -> Figure | None:
    """Horizontal bars, most important on top: the share of the variance of the validation score each
    searched parameter explains, with a one-line reading guide."""
    table = results.importance
    if table.empty:
        return None
    shares = 100 * table["importance"].to_numpy(dtype=float)
    fig = figure(8, max(3.4, 2.0 + 0.5 * len(table)))
    ax = fig.subplots()
    rows = np.arange(len(table))[::-1]
    ax.barh(rows, shares, color="C0", height=0.6)
    for row, share in zip(rows, shares):
        ax.text(share + 1, row, f"{share:.0f}%", va="center", fontsize=10)
    ax.set_yticks(rows, table["param"])
    ax.set_xlim(0, 110)
    ax.set_xlabel("share of the variance explained (%), the bars sum to 100%")
    ax.grid(axis="x", alpha=0.3)
    first = " at the first rung (the one budget every candidate trained for)" if results.rungs is not None else ""
    unrated = [p for p in results.params if p not in set(table["param"])]
    note = (f"\nnot rated: {', '.join(unrated)} (unused by some configurations, or never varied)" if unrated else "")
    layout(fig, f"Parameter importance for the mean {results.objective.column}\n"
           f"how much of its variation across configurations{first} each parameter explains (fANOVA){note}",
           fontsize=11, left=1.4)
    return fig
