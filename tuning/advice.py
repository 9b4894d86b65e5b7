"""What a practitioner would say about a finished search: a choice at the edge of what was searched, and
configurations too close to tell apart with this much validation data."""

from __future__ import annotations

import math

import pandas as pd

from .formatting import format_value

EDGE_SHARE = 0.1  # of a range (in log terms when it is drawn log-uniformly): the ends count as its edge
SAMPLE_METRICS = ("accuracy", "balanced_accuracy")  # scores that move in steps of one validation row


def advice(space: dict, params: dict, board: pd.DataFrame, metric: str, n_val: int) -> list[str]:
    """One line per piece of advice on the chosen `params` of a search over `space`."""
    lines = [line for key, values in space.items() if key in params
             for line in [_edge(key, values, params[key])] if line]
    tie = _ties(board, metric, n_val)
    return [*lines, *([tie] if tie else [])]


def _edge(key: str, values, chosen) -> str | None:
    """'lr = 0.1 is the largest value searched: consider widening the range', or None."""
    if isinstance(chosen, bool) or not isinstance(chosen, int | float):
        return None
    if isinstance(values, list):
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(numbers) < 3 or chosen not in (min(numbers), max(numbers)):
            return None
        where = f"the {'largest' if chosen == max(numbers) else 'smallest'} value searched"
    else:
        low, high = values["low"], values["high"]
        scale = math.log if values.get("log") else (lambda v: v)
        share = (scale(chosen) - scale(low)) / (scale(high) - scale(low))
        if EDGE_SHARE < share < 1 - EDGE_SHARE:
            return None
        where = (f"near the {'top' if share >= 1 - EDGE_SHARE else 'bottom'} of the range searched "
                 f"({format_value(low)}..{format_value(high)})")
    return f"{key} = {format_value(chosen)} is {where}: the best may lie beyond it; consider widening the range"


def within_one_row(board: pd.DataFrame, metric: str, n_val: int, score: float) -> pd.DataFrame | None:
    """The healthy configurations scoring within one validation row of `score` (None for a metric that does
    not move in steps of one row, or an unknown number of rows)."""
    if metric not in SAMPLE_METRICS or n_val < 1:
        return None
    healthy = board[board["all_ok"] & board["mean"].notna()]
    return healthy[abs(healthy["mean"] - score) < 1 / n_val - 1e-12]


def _ties(board: pd.DataFrame, metric: str, n_val: int) -> str | None:
    """How many configurations score within one validation row of the best (for scores counted in rows)."""
    healthy = board[board["all_ok"] & board["mean"].notna()]
    close = within_one_row(board, metric, n_val, healthy["mean"].iloc[0]) if len(healthy) >= 2 else None
    if close is None or len(close) < 2:
        return None
    return (f"{len(close)} configurations score within one validation row ({100 / n_val:.2g} points) of the best: "
            "too close to tell apart; more folds (data.folds) or repeats would separate them")
