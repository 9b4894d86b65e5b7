"""Rank configurations from runs.csv on validation scores only, and pick the best.

A configuration's score is the mean over its repeats (std and n shown); the `Objective` says which
column that is and how ties break. A configuration with any failed or diverged repeat ranks after
every healthy one; under successive halving, configurations that reached a later rung rank first.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from .errors import shown
from .objective import Objective
from .trial import TrialStatus


def leaderboard(runs: pd.DataFrame, params: list[str], objective: Objective) -> pd.DataFrame:
    """One row per configuration, best first: params, n, n_ok, mean, std, mean val_loss, epochs, seconds."""
    runs = runs.assign(ok=runs["status"] == TrialStatus.OK)
    grouped = runs.groupby("config_id", sort=True)
    board = grouped[params].first() if params else pd.DataFrame(index=grouped.size().index)
    board["n"] = grouped.size()
    board["n_ok"] = grouped["ok"].sum()
    healthy = runs[runs["ok"]].groupby("config_id")
    board["mean"] = healthy[objective.column].mean()
    board["std"] = healthy[objective.column].std(ddof=1).fillna(0.0)
    board["val_loss"] = healthy["val_loss"].mean()
    board["epochs"] = healthy["final_epoch"].mean()
    board["fit_seconds"] = grouped["fit_seconds"].mean()
    board["all_ok"] = board["n_ok"] == board["n"]
    # Successive halving: a configuration that reached a later rung trained longer and beat the rest.
    board["_rung"] = -grouped["rung"].max() if "rung" in runs.columns else 0
    board = objective.rank(board.reset_index(), before=[("_rung", True), ("all_ok", False)])
    board = board.drop(columns="_rung").reset_index(drop=True)
    board.insert(0, "rank", np.arange(1, len(board) + 1))
    return board


def selectable(board: pd.DataFrame) -> pd.DataFrame:
    """The configurations selection may choose: every repeat ok."""
    return board[board["all_ok"] & board["mean"].notna()]


def why_nothing_is_selectable(runs: pd.DataFrame) -> str:
    """One line on why no configuration can be chosen: how many trials failed, and their commonest errors."""
    bad = runs[runs["status"] != TrialStatus.OK]
    what = (f"all {len(runs)} trials failed or diverged" if len(bad) == len(runs) else
            f"every configuration has a failed or diverged repeat ({len(bad)} of {len(runs)} trials)")
    errors = bad["error"].fillna("").astype(str).map(lambda e: e.splitlines()[0] if e else "no error recorded")
    kinds = errors.map(lambda e: re.sub(r"\d+(\.\d+)?(e[+-]?\d+)?", "#", e))  # the same error, other numbers
    common = kinds.value_counts().head(2)
    examples = [(errors[kinds == kind].iloc[0], n) for kind, n in common.items()]
    return f"nothing could be selected: {what}; " + ", ".join(f"{n} x {shown(e, 110)}" for e, n in examples)


def select_best(board: pd.DataFrame, objective: Objective, rule: str = "mean",
                complexity: Callable[[pd.Series], float] | None = None) -> pd.Series:
    """The chosen configuration: the top row (`mean`), or the simplest within one standard error (`one_se`).

    `complexity(row) -> number` ranks simplicity for one_se (fewer parameters is simpler).
    """
    healthy = selectable(board)
    if healthy.empty:
        raise ValueError("every configuration failed or diverged: there is nothing to select")
    best = healthy.iloc[0]
    if rule == "mean" or complexity is None:
        return best
    se = best["std"] / np.sqrt(best["n_ok"])
    close = healthy[[objective.within(v, best["mean"], se) for v in healthy["mean"]]]
    simplest = min(close.index, key=lambda i: (complexity(close.loc[i]), close.loc[i, "rank"]))
    return close.loc[simplest]
