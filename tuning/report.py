"""Reports from an experiment folder: the console leaderboard and report.md.

Everything here reads the folder's files (config.toml, runs.csv, best.json), so a report can
be redrawn at any time, also for an interrupted experiment, without touching the CSVs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .files import atomic_open, write_text
from .formatting import format_value
from .importance import summary as importance_summary
from .objective import Objective
from .results import Results, read_results
from .select import selectable, why_nothing_is_selectable
from .store import IMPORTANCE_FILE, IMPORTANCE_SOURCE, REPORT_FILE
from .trial import TrialStatus


def leaderboard_rows(board: pd.DataFrame, params: list[str], objective: Objective,
                     top: int) -> tuple[list[str], list[list]]:
    """Header and rows of the top configurations: rank, params, mean ± std, n ok / n, val_loss, epochs, time."""
    header = ["rank", *params, f"{objective.column} (mean ± std)", "n", "val_loss", "epochs", "fit s"]
    rows = []
    for _, row in board.head(top).iterrows():
        score = "—" if pd.isna(row["mean"]) else f"{row['mean']:.4f} ± {row['std']:.4f}"
        if not row["all_ok"]:
            score += f" ({int(row['n'] - row['n_ok'])} failed/diverged)"
        rows.append([str(row["rank"]), *(format_value(row[p]) for p in params), score,
                     f"{int(row['n_ok'])}/{int(row['n'])}",
                     "—" if pd.isna(row["val_loss"]) else f"{row['val_loss']:.4f}",
                     "—" if pd.isna(row["epochs"]) else f"{row['epochs']:.0f}", f"{row['fit_seconds']:.2f}"])
    return header, rows


def _more(board: pd.DataFrame, top: int) -> str:
    more = len(board) - top
    return f"... and {more} more configuration{'s' * (more > 1)}" if more > 0 else ""


def format_leaderboard(board: pd.DataFrame, params: list[str], objective: Objective, top: int = 10) -> str:
    """The top configurations as an aligned plain-text table."""
    header, rows = leaderboard_rows(board, params, objective, top)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).rjust(w) for cell, w in zip(r, widths)) for r in [header, *rows]]
    return "\n".join(filter(None, [*lines, _more(board, top)]))


def _markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def status_line(results: Results) -> str:
    """How complete the experiment is, in one sentence."""
    stored, expected = len(results.runs), results.expected_trials
    if not results.finished:
        rungs = results.rungs
        return (f"successive halving interrupted at rung {int(rungs['rung'].max()) if len(rungs) else 0}: "
                f"{len(rungs)} trainings of {stored} trials stored; run the same command again to finish it")
    if results.missing:
        return (f"{stored} of {expected} trials stored, {results.missing} missing: the experiment was interrupted; "
                "run the same command again to finish it")
    return f"all {expected} trials stored"


def _facts(results: Results) -> list[str]:
    """The experiment in a two-column table: data, search, trials, seed, selection, time, versions."""
    e, run = results.experiment, (results.best or {}).get("run", {})
    facts = [
        ("dataset", f"{e.data['dataset']} ({results.task})"),
        ("rows", ", ".join(f"{k} {v}" for k, v in run.get("rows", {}).items()) or "—"),
        ("features", str(run.get("n_features", "—"))),
        ("search", f"{e.search['strategy']} over {', '.join(results.params) or 'nothing'}: "
                   f"{len(results.board)} configurations x {e.search['repeats']} repeats"),
        ("trials", status_line(results)),
        ("seed", f"{e.seed} (each trial's seed derives from it and the trial's identity)"),
        ("selection", f"{e.search['select']} of {results.objective.column} over repeats, validation data only"),
    ]
    if run:
        facts.append(("time", f"{run['search_seconds']:.1f} s on {max(run['workers'], 1)} worker(s), "
                              f"final refit {run['refit_seconds']:.2f} s"))
        facts.append(("versions", ", ".join(f"{k} {v}" for k, v in run["versions"].items())))
    return [_markdown_table(["", ""], [[f"**{k}**", v] for k, v in facts]), ""]


def _notes(results: Results) -> list[str]:
    """What loading the data noticed: columns dropped, rows left out, likely leaks."""
    if not results.notes:
        return []
    return ["## About the data", "", *(f"- {note}" for note in results.notes), ""]


def _choice(results: Results) -> list[str]:
    best, column = results.best, results.objective.column
    if not best and len(results.runs) and results.finished and not results.missing and \
            selectable(results.board).empty:
        return ["## Chosen configuration", "", f"None: {why_nothing_is_selectable(results.runs)}.", ""]
    if not best:
        return ["## Chosen configuration", "", "None yet: the experiment has not finished.", ""]
    test = ", ".join(f"{k} **{v:.4f}**" for k, v in best.items() if k.startswith("test_") and isinstance(v, float))
    return ["## Chosen configuration", "",
            f"`{json.dumps(best['params'])}`: {column} {best[column]:.4f} "
            f"± {best[column + '_std']:.4f} over {best['n_repeats']} trials. Retrained on every non-test row for "
            f"{best['epochs']} epochs and evaluated once on the held-out test split: {test}.", "",
            *(f"- {line}" for line in best.get("advice", [])), *([""] if best.get("advice") else [])]


def importance_line(results: Results) -> str:
    """'lr explains 61% of the variation in val_accuracy ...', or why nothing can be said yet."""
    line = importance_summary(results.importance, results.objective)
    if line or len(results.params) == 0:
        return line
    return "parameter importance: too few finished configurations with varied settings to say"


def _importance(results: Results) -> list[str]:
    table = results.importance
    if table.empty:
        return []
    basis = ("the first rung, where every candidate trained for the same epochs"
             if results.rungs is not None else "every configuration whose trials all finished")
    rows = [[r.param, f"{100 * r.importance:.0f}%"] for r in table.itertuples()]
    unrated = [p for p in results.params if p not in set(table["param"])]
    return ["## Parameter importance", "",
            f"{importance_summary(table, results.objective)}. The share of the variance of the mean "
            f"{results.objective.column} each searched parameter explains (fANOVA over {basis}; "
            f"importance.csv).", "", _markdown_table(["parameter", "share"], rows), "",
            *([f"Not rated: {', '.join(unrated)} (unused by some configurations, or never varied).", ""]
              if unrated else [])]


def write_importance(results: Results) -> Path:
    """importance.csv: param, importance (shares summing to 1, most important first; empty when unknown)."""
    path = results.folder / IMPORTANCE_FILE
    with atomic_open(path) as f:
        results.importance.to_csv(f, index=False)
    write_text(results.folder / IMPORTANCE_SOURCE, results.importance_source)  # after it: a stale key never matches
    return path


def _failures(results: Results) -> list[str]:
    runs = results.runs
    failed = runs[runs["status"] != TrialStatus.OK] if len(runs) else runs
    if not len(failed):
        return ["## Failed and diverged trials", "", "None.", ""]
    rows = [[r["trial_id"], *(format_value(r[p]) for p in results.params), int(r["repeat"]), r["status"],
             str(r["error"])[:160]] for _, r in failed.iterrows()]
    return ["## Failed and diverged trials", "",
            _markdown_table(["trial", *results.params, "repeat", "status", "error"], rows), ""]


def _plots(results: Results, plots: list[Path]) -> list[str]:
    lines = ["## Plots", ""] if plots else []
    for path in plots:
        title = path.stem.replace("_", " ").capitalize()
        lines += [f"### {title}", "", f"![{title}]({path.relative_to(results.folder).as_posix()})", ""]
    return lines


def write_report(results: Results, plots: list[Path]) -> Path:
    """Write report.md: the experiment, the choice, the leaderboard, failures and the plots."""
    lines = [f"# Experiment `{results.experiment.name}`", "", *_facts(results), *_notes(results), *_choice(results)]
    if len(results.board):
        header, rows = leaderboard_rows(results.board, results.params, results.objective, top=15)
        lines += ["## Leaderboard", "", _markdown_table(header, rows), "", _more(results.board, 15), ""]
    lines += [*_importance(results), *_failures(results), *_plots(results, plots)]
    path = results.folder / REPORT_FILE
    write_text(path, "\n".join(lines).rstrip() + "\n")
    return path


def render(folder: str | Path, pool=None) -> tuple[Results, list[Path], Path]:
    """Redraw the plots and report.md of a folder from its files; returns what was read and written. With
    `pool` (worker processes), the figures are drawn there."""
    from .plots import draw_plots

    results = read_results(folder)
    plots = draw_plots(results, pool) if len(results.runs) else []
    if len(results.runs):
        write_importance(results)
    return results, plots, write_report(results, plots)
