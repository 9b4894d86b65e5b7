"""The numbers behind the figures, as pure functions of runs.csv and history.csv (tests check them against
pandas directly): levels of a parameter, means per cell, curves per configuration or per value, the chosen
configuration and the ones tied with it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..advice import within_one_row
from ..formatting import format_value

MAX_LEVELS = 12  # a parameter with more distinct values (a random-search range) is no heatmap axis
MAX_PANELS = 6  # heatmap panels at most (values of the third parameter)
VALUE_BINS = 4  # a range's trials grouped into this many bins of equal count in the per-value curves
HEATMAP_PREFERENCE = ("lr", "batch_size", "hidden_units")  # x, y, panel when searched


def levels(values: pd.Series) -> list:
    """The distinct values of a column, ascending (numbers numerically, text alphabetically)."""
    return sorted(values.dropna().unique().tolist())


def is_numeric(values: list) -> bool:
    return bool(values) and all(isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in values)


def is_geometric(values: list) -> bool:
    """Whether numbers are spaced geometrically (0.01, 0.05, 0.1; 32, 64, 128): a log axis reads them.

    True for positive numbers spanning a factor >= 10, or >= 4 and spaced at least as evenly in log
    as in linear terms.
    """
    if len(values) < 2 or not is_numeric(values):
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


def value_groups(runs: pd.DataFrame, param: str) -> pd.Series:
    """Each trial's group for `param`: its value, or for a range with more than MAX_LEVELS values its
    bin of equal count ('0.001–0.004'), as text in ascending order (an ordered categorical)."""
    values = runs[param]
    distinct = levels(values)
    if len(distinct) <= MAX_LEVELS or not is_numeric(distinct):
        names = [format_value(v) for v in distinct]
        return pd.Series(pd.Categorical(values.map(format_value), categories=names, ordered=True), index=runs.index)
    edges = np.unique(np.quantile(values.dropna().to_numpy(dtype=float), np.linspace(0, 1, VALUE_BINS + 1)))
    names = [f"{low:.2g}–{high:.2g}" for low, high in zip(edges[:-1], edges[1:])]  # short: a legend entry
    return pd.cut(values, edges, labels=names, include_lowest=True, ordered=True)


def curves_by_value(runs: pd.DataFrame, history: pd.DataFrame, param: str, column: str) -> pd.DataFrame:
    """Per value of `param` (or bin of a range) and epoch: the mean and count of `column` over every ok trial
    with that value, whatever its other parameters and repeat. Columns value, epoch, mean, n."""
    ok = runs[runs["status"] == "ok"]
    groups = value_groups(ok, param).rename("value")
    rows = history.merge(pd.concat([ok["trial_id"], groups], axis=1), on="trial_id")
    stats = rows.groupby(["value", "epoch"], observed=True)[column].agg(["mean", "count"])
    return stats.rename(columns={"count": "n"}).reset_index()


def heatmap_values(runs: pd.DataFrame, x: str, y: str, panel: str | None, score: str) -> dict:
    """Mean `score` over ok trials by (y, x), one table per value of `panel` (key None without panel).

    Each table has the y values ascending as index and the x values ascending as columns, every
    value present in runs.csv included: a cell without an ok trial is NaN.
    """
    return cell_tables(runs[runs["status"] == "ok"], runs, x, y, panel, score, "mean")


def cell_tables(rows: pd.DataFrame, runs: pd.DataFrame, x: str, y: str, panel: str | None, column: str,
                how: str) -> dict:
    """`column` of `rows` aggregated (`how`) by (y, x), one table per `panel` value, on runs.csv's levels."""
    tables = {}
    for value in levels(runs[panel]) if panel else [None]:
        subset = rows if panel is None else rows[rows[panel] == value]
        table = subset.groupby([y, x])[column].agg(how).unstack(x) if len(subset) else pd.DataFrame()
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


def rung_scores(rungs: pd.DataFrame, score: str) -> pd.DataFrame:
    """Mean `score` over ok repeats per configuration and rung, with the epochs trained: one row each."""
    ok = rungs[rungs["status"] == "ok"]
    return ok.groupby(["config_id", "rung"]).agg(mean=(score, "mean"), epochs=("epochs", "max")).reset_index()


def ranked(board: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard's configurations that have a score (at least one ok repeat), best first."""
    return board[board["mean"].notna()] if len(board) else board


def chosen_row(board: pd.DataFrame, best: dict | None) -> pd.Series | None:
    """The leaderboard row of the configuration best.json chose, or the top one of an unfinished run."""
    scored = ranked(board)
    if scored.empty:
        return None
    chosen = scored[scored["config_id"] == (best or {}).get("config_id")]
    return (chosen if len(chosen) else scored).iloc[0]


def tied_configs(board: pd.DataFrame, runs: pd.DataFrame, chosen: pd.Series, metric: str,
                 validation_rows: int) -> pd.DataFrame:
    """The other configurations within one validation row of the chosen one's score (none when the metric
    is not counted in rows or the folder does not say how many there were). Under successive halving,
    only those that reached the chosen one's rung compare."""
    peers = board[board["config_id"] != chosen["config_id"]]
    if "rung" in runs.columns:
        reached = runs.groupby("config_id")["rung"].max()
        peers = peers[peers["config_id"].map(reached) == reached[chosen["config_id"]]]
    tied = within_one_row(peers, metric, validation_rows, float(chosen["mean"]))
    return peers.iloc[:0] if tied is None else tied
