"""Text reports: the console leaderboard (and, with plots, report.md)."""

from __future__ import annotations

import pandas as pd

from .trial import score_key


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def format_leaderboard(board: pd.DataFrame, params: list[str], task: str, top: int = 10) -> str:
    """The top configurations as an aligned table: rank, params, mean +/- std of the score, n, epochs, time."""
    key = score_key(task)
    header = ["rank", *params, f"{key} (mean ± std)", "n", "val_loss", "epochs", "fit s"]
    rows = []
    for _, row in board.head(top).iterrows():
        if pd.isna(row["mean"]):
            score = "—"
        else:
            score = f"{row['mean']:.4f} ± {row['std']:.4f}"
        status = "" if row["all_ok"] else f" ({int(row['n'] - row['n_ok'])} failed/diverged)"
        rows.append([str(row["rank"]), *(_number(row[p]) for p in params), score + status,
                     f"{int(row['n_ok'])}/{int(row['n'])}",
                     "—" if pd.isna(row["val_loss"]) else f"{row['val_loss']:.4f}",
                     "—" if pd.isna(row["epochs"]) else f"{row['epochs']:.0f}", f"{row['fit_seconds']:.2f}"])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).rjust(w) for cell, w in zip(r, widths)) for r in [header, *rows]]
    more = len(board) - top
    if more > 0:
        lines.append(f"... and {more} more configuration{'s' * (more > 1)}")
    return "\n".join(lines)
