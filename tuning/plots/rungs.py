"""Successive halving's figure: every candidate's score at each rung, lines following the promoted ones."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..results import Results
from .data import chosen_row, rung_scores
from .style import CHOSEN_COLOR, figure, layout, legend_below, legend_rows

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def plot_rungs(results: Results) -> Figure | None:
    """Successive halving: every candidate's score at each rung; lines follow the promoted ones."""
    if results.rungs is None or results.rungs.empty:
        return None
    scores = rung_scores(results.rungs, results.objective.column)
    if scores.empty:
        return None
    from matplotlib.lines import Line2D

    fig = figure(9, 6)
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
    chosen = chosen_row(results.board, results.best)
    if chosen is not None:  # the configuration selected, at the rung it was selected from
        mine = scores[(scores["config_id"] == chosen["config_id"]) & (scores["rung"] == last_rung)]
        ax.scatter(mine["rung"], mine["mean"], s=160, marker="*", color=CHOSEN_COLOR, edgecolor="black", zorder=4)
    epochs = scores.groupby("rung")["epochs"].max()
    counts = scores.groupby("rung").size()
    ax.set_xticks(epochs.index, [f"rung {r}\n{epochs[r]} epochs\n{counts[r]} configs" for r in epochs.index])
    ax.set_xlabel("rung (epochs trained so far, configurations trained)")
    ax.set_ylabel(f"mean {results.objective.label} over repeats")
    ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=CHOSEN_COLOR, marker="*", markersize=12, markeredgecolor="black", linestyle="",
                      label="chosen configuration"),
               Line2D([], [], color="C3", marker="o", label="reached the last rung"),
               Line2D([], [], color="C0", marker="o", alpha=0.6, label="promoted, later stopped"),
               Line2D([], [], color="0.55", marker="o", linestyle="", label="stopped at this rung")]
    layout(fig, f"Successive halving: each configuration's {results.objective.label} per rung\n"
           f"the best 1/{results.experiment.search['eta']} of each rung go on training from where they stopped",
           legend_rows=legend_rows(len(handles)), bottom=1.05)
    legend_below(fig, handles, [h.get_label() for h in handles])
    return fig
