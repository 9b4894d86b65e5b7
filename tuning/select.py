"""Rank configurations from runs.csv on validation scores only, and pick the best.

A configuration's score is the mean over its repeats (std and n shown). Ties, common when
one validation sample is a third of a point, break by mean validation loss, then grid order.
A configuration with any failed or diverged repeat ranks after every healthy one; under successive
halving, configurations that reached a later rung rank first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .trial import score_key


def parameter_count(train: dict, n_features: int, n_outputs: int) -> int:
    """Weights and biases of the MLP a parameter set builds: the 'simplicity' one_se prefers."""
    sizes = [n_features] + [train["hidden_units"]] * train["hidden_layers"] + [n_outputs]
    return sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))


def leaderboard(runs: pd.DataFrame, params: list[str], task: str) -> pd.DataFrame:
    """One row per configuration, best first: params, n, n_ok, mean, std, mean val_loss, epochs, seconds."""
    key = score_key(task)
    higher_is_better = key == "val_accuracy"
    runs = runs.assign(ok=runs["status"] == "ok")
    grouped = runs.groupby("config_id", sort=True)
    board = grouped[params].first() if params else pd.DataFrame(index=grouped.size().index)
    board["n"] = grouped.size()
    board["n_ok"] = grouped["ok"].sum()
    healthy = runs[runs["ok"]].groupby("config_id")
    board["mean"] = healthy[key].mean()
    board["std"] = healthy[key].std(ddof=1).fillna(0.0)
    board["val_loss"] = healthy["val_loss"].mean()
    board["epochs"] = healthy["final_epoch"].mean()
    board["fit_seconds"] = grouped["fit_seconds"].mean()
    board["all_ok"] = board["n_ok"] == board["n"]
    # Successive halving: a configuration that reached a later rung trained longer and beat the rest.
    board["_rung"] = -grouped["rung"].max() if "rung" in runs.columns else 0
    board = board.reset_index()
    order = board.assign(_score=-board["mean"] if higher_is_better else board["mean"])
    order = order.sort_values(["_rung", "all_ok", "_score", "val_loss", "config_id"],
                              ascending=[True, False, True, True, True], na_position="last", kind="mergesort")
    order = order.drop(columns="_rung")
    board = order.drop(columns="_score").reset_index(drop=True)
    board.insert(0, "rank", np.arange(1, len(board) + 1))
    return board


def select_best(board: pd.DataFrame, task: str, rule: str = "mean", complexity=None) -> pd.Series:
    """The chosen configuration: the top row (`mean`), or the simplest within one standard error (`one_se`).

    `complexity(row) -> number` ranks simplicity for one_se (fewer parameters is simpler).
    """
    healthy = board[board["all_ok"] & board["mean"].notna()]
    if healthy.empty:
        raise ValueError("every configuration failed or diverged: there is nothing to select")
    best = healthy.iloc[0]
    if rule == "mean" or complexity is None:
        return best
    se = best["std"] / np.sqrt(best["n_ok"])
    if score_key(task) == "val_accuracy":
        close = healthy[healthy["mean"] >= best["mean"] - se]
    else:
        close = healthy[healthy["mean"] <= best["mean"] + se]
    simplest = min(close.index, key=lambda i: (complexity(close.loc[i]), close.loc[i, "rank"]))
    return close.loc[simplest]
