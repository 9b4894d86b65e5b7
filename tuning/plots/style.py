"""How every figure looks: its canvas, axis labels that say how values are spaced, integer epoch ticks,
readable ticks on a range's axis, legends outside the data."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from ..formatting import format_value

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 110
MIN_WIDTH = 8.0  # inches: room for a two-line title
BAND = "band: min–max over repeats"
EVENLY = "values searched, evenly spaced"  # a categorical axis: one slot per value, not to scale
CHOSEN_COLOR, TIED_COLOR = "red", "#ff9f9f"
LINE, LEGEND_ROW = 0.24, 0.21  # inches: a line of 12 pt title, a row of 9 pt legend


def figure(width: float, height: float) -> Figure:
    """A figure on an Agg canvas (no display, no pyplot), wide enough for a title. Its panels are placed by
    `layout` at fixed margins: a layout engine would measure every text and draw the figure twice to save it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(width, MIN_WIDTH), height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def layout(fig: Figure, title: str, *, fontsize: float = 12, legend_rows: int = 0, left: float = 0.8,
           right: float = 0.25, bottom: float = 0.6, top: float = 0.0, wspace: float = 0.25,
           hspace: float = 0.45) -> None:
    """The figure's title, and its panels placed at fixed margins, in inches: room above for the title's lines
    (and `top` more, for panel titles), below for the axis labels (`bottom`) and a legend of `legend_rows`."""
    width, height = fig.get_size_inches()
    fig.suptitle(title, fontsize=fontsize, y=1 - 0.06 / height, va="top")
    head = 0.14 + (title.count("\n") + 1) * LINE * fontsize / 12 + top
    foot = bottom + (0.12 + LEGEND_ROW * legend_rows if legend_rows else 0)
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - head / height, bottom=foot / height,
                        wspace=wspace, hspace=hspace)


def band(ax: Axes, curve: pd.DataFrame, label: str, color: str, alpha: float = 0.18, **line) -> None:
    """A mean line with its min–max band."""
    ax.fill_between(curve["epoch"], curve["min"], curve["max"], color=color, alpha=alpha, linewidth=0)
    ax.plot(curve["epoch"], curve["mean"], color=color, label=label, **line)


def epoch_axis(ax: Axes) -> None:
    """An x axis of epochs: labelled so, ticks on whole epochs only."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def categorical_label(param: str) -> str:
    """The label of an axis with one evenly spaced slot per value: it says so (never 'log scale')."""
    return f"{param} ({EVENLY})"


def numeric_label(param: str, log: bool) -> str:
    """The label of an axis drawn to scale: 'log scale' only when it is one."""
    return f"{param} (log scale)" if log else param


def readable_ticks(ax: Axes, which: str, log: bool) -> None:
    """Ticks a reader can read on a range's axis: 0.001, 0.002, 0.005 rather than 10^-3 and unlabelled minors."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter, NullLocator

    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_locator(log_locator(*axis.get_data_interval()) if log else MaxNLocator(6))
    axis.set_major_formatter(FuncFormatter(lambda v, _: format_value(float(f"{v:.3g}"))))
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())


def log_locator(low: float, high: float):
    """Ticks at 1, 3, 10, 30... over a range of more than one and a half decades, at 1, 2, 5 over less."""
    import math

    from matplotlib.ticker import LogLocator

    wide = low > 0 and math.log10(high / low) > 1.5
    return LogLocator(subs=(1.0, 3.0) if wide else (1.0, 2.0, 5.0), numticks=10)


def legend_rows(n_labels: int, ncols: int | None = None, title: bool = False) -> int:
    """The rows `legend_below` takes for `n_labels` entries (and its title)."""
    return -(-n_labels // (ncols or min(3, n_labels))) + title


def legend_below(fig: Figure, handles: list, labels: list, title: str | None = None, ncols: int | None = None) -> None:
    """A figure legend under the panels (in the room `layout` left for it), where it covers no data."""
    if not handles:
        return
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.005), ncols=ncols or min(3, len(labels)),
               fontsize=9, title=title, title_fontsize=9)
