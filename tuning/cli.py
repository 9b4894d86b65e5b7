"""Command line: `python main.py [run|report|predict] ...`. Parses, calls, prints; no logic of its own.

Heavy modules (numpy, pandas, joblib, matplotlib) are imported inside the commands, so that
`--help` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from importlib.metadata import PackageNotFoundError, version

from .errors import DataNote, RunFailed, TuningWarning, UserError, one_line

COMMANDS = ("run", "report", "predict")
EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error on one line (and exits 2), without the usage block."""

    def error(self, message: str) -> None:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _version() -> str:
    try:
        return version("numpy-mlp-tuner")
    except PackageNotFoundError:
        return "0.1.0"


def _positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; each command's arguments come from its own function below."""
    parser = OneLineParser(
        prog="mlp-tuner" if os.path.basename(sys.argv[0]) == "mlp-tuner" else "main.py",
        description="Search hyperparameters of a NumPy neural network, log every trial and epoch, "
                    "select on validation data, retrain and test once.",
        epilog="examples:\n  python main.py                       # the default digits grid\n"
               "  python main.py run --config exp.toml --n-jobs 2\n"
               "  python main.py report results/digits\n"
               "  python main.py predict results/digits/model.npz digit.png",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="{run,report,predict}", parser_class=OneLineParser)
    _add_run(sub)
    _add_report(sub)
    _add_predict(sub)
    return parser


def _add_run(sub) -> None:
    run = sub.add_parser(
        "run", help="run (or resume) an experiment (the default command)",
        description="Run an experiment: search, log runs.csv and history.csv, select on validation data, "
                    "retrain the best on every non-test row, test once. Running it again resumes.",
        epilog="example:\n  python main.py run --config exp.toml --set train.epochs=10 "
               "--set 'search.space.lr=[0.01, 0.1]'",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--config", metavar="FILE", help="experiment TOML file (default: built-in defaults)")
    run.add_argument("--out", metavar="DIR", help="experiment folder (default: results/<name>)")
    run.add_argument("--n-jobs", type=int, metavar="N", help="parallel workers (-1 = all cores)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                     help="override a config key, TOML syntax (repeatable): train.epochs=10")
    run.add_argument("--force", action="store_true",
                     help="replace an experiment with a different config in the folder (old files moved aside)")
    run.add_argument("--quiet", action="store_true", help="no progress bar and no leaderboard")
    run.add_argument("--no-plots", action="store_true", dest="no_plots",
                     help="skip plots/ and report.md (and the parameter importance): `report DIR` draws them later")
    run.add_argument("--timings", action="store_true",
                     help="at the end, print on stderr how long each phase took (start-up, data, search, "
                          "refit and test, plots and report, total)")
    run.set_defaults(handler=command_run)


def _add_report(sub) -> None:
    report = sub.add_parser(
        "report", help="print the leaderboard and redraw plots and report.md of an experiment folder",
        description="Print the leaderboard and redraw plots/*.png and report.md from the folder's CSVs alone "
                    "(also for an interrupted experiment). runs.csv and history.csv are never changed.",
        epilog="example:\n  python main.py report results/digits", formatter_class=argparse.RawDescriptionHelpFormatter)
    report.add_argument("folder", metavar="DIR", help="an experiment folder (results/<name>)")
    report.add_argument("--top", type=_positive_int, default=10, metavar="K",
                        help="configurations to list (default 10)")
    report.set_defaults(handler=command_report)


def _add_predict(sub) -> None:
    predict = sub.add_parser(
        "predict", help="predict with a final model: rows of a .csv / .npy, or an image of a digit",
        description="Predict with a model.npz written by a run. INPUT is a .csv or .npy of raw feature rows "
                    "(scaled as in training), or an image (.png, .jpg) of a digit, shown as the model sees it.",
        epilog="examples:\n  python main.py predict results/digits/model.npz digit.png\n"
               "  python main.py predict results/digits/model.npz rows.csv --top 3 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    predict.add_argument("model", metavar="MODEL", help="an experiment folder, or its model.npz")
    predict.add_argument("input", metavar="INPUT", help=".csv or .npy of feature rows, or an image file")
    predict.add_argument("--top", type=_positive_int, default=3, metavar="K",
                         help="most probable classes to show (default 3)")
    predict.add_argument("--json", action="store_true", help="print JSON instead of text")
    predict.set_defaults(handler=command_predict)


def command_run(args: argparse.Namespace) -> int:
    from .config import load_experiment
    from .prepare import experiment_folder

    overrides = list(args.overrides)
    if args.n_jobs is not None:
        overrides.append(f"search.n_jobs={args.n_jobs}")
    experiment = load_experiment(args.config, overrides)
    folder = experiment_folder(experiment, args.out)
    try:
        return _run(args, experiment)
    except KeyboardInterrupt:  # while loading data, searching, refitting or drawing
        print(f"interrupted: finished trials are stored in {folder}; run the same command again to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED


def _run(args: argparse.Namespace, experiment) -> int:
    from . import prepare, progress, runner  # noqa: F401  (imported here, `--timings` counts them as start-up)
    from .api import run
    from .executor import release_workers
    from .report import format_leaderboard, importance_line

    imported = time.perf_counter()
    live = not args.quiet and sys.stderr.isatty()  # a bar and status lines for a person watching, not for a log

    def status(text: str) -> None:
        if live:
            print(text, file=sys.stderr, flush=True)

    try:
        result = run(experiment, args.out, force=args.force, progress=live, on_status=status,
                     plots=not args.no_plots)
    finally:
        release_workers()  # this process ends next: its idle workers need not be joined at exit
    summary, objective = result.summary, result.objective
    if summary.replaced:
        print(f"the experiment that was in {summary.folder} is now in {summary.replaced}/")
    if not args.quiet:
        print(format_leaderboard(result.leaderboard, result.params, objective))
        print()
    unit = f"trial-rungs ({summary.n_trials} trials, {summary.rungs} rungs)" if summary.rungs else "trials"
    print(f"{summary.n_run} {unit} run" + (f", {summary.n_resumed} resumed from the folder" if summary.n_resumed
                                             else "")
          + f"; search {summary.search_seconds:.1f} s, {summary.wall_seconds:.1f} s in all (refit, test, plots)"
          + (f"; {summary.in_process}" if summary.in_process else f", on {max(summary.n_workers, 1)} worker(s)"))
    print(_best_lines(result.best, objective.column))
    if not args.no_plots and (line := importance_line(result)):
        print(line)
    for line in result.best.get("advice", []):
        print(f"note: {one_line(line)}")
    made = "best.json, model.npz, plots/, report.md" if not args.no_plots else "best.json, model.npz; no plots/ " \
        f"or report.md: python main.py report {summary.folder} draws them"
    print(f"results in {summary.folder}/ (runs.csv, history.csv, {made})")
    if args.timings:
        sys.stdout.flush()
        print(format_timings(args.started, imported, summary.stamps, time.perf_counter()), file=sys.stderr)
    return 0


TIMED_PHASES = (("start-up", "imported"), ("data", "prepared"), ("search", "searched"), ("refit+test", "refitted"),
                ("plots+report", "rendered"))


def format_timings(started: float, imported: float, stamps: dict[str, float], ended: float) -> str:
    """One `timing: PHASE SECONDS s (SHARE%)` line per phase of a run, from time.perf_counter() stamps: start-up
    (imports, from `started`), data (loading, splitting, scaling), search, refit+test, plots+report, the rest
    (reading the results back, the summary) and the total. Interpreter exit comes after and is not counted."""
    marks, last, lines = {"imported": imported, **stamps}, started, []
    total = ended - started
    for name, stamp in TIMED_PHASES:
        if stamp in marks:
            lines.append((name, marks[stamp] - last))
            last = marks[stamp]
    lines += [("other", ended - last), ("total", total)]
    return "\n".join(f"timing: {name:<13}{seconds:7.3f} s ({100 * seconds / max(total, 1e-9):5.1f}%)"
                     for name, seconds in lines)


def _best_lines(best: dict, key: str) -> str:
    """The chosen configuration with its validation score, and the final model's test scores."""
    tests = "  ".join(f"{k} {v:.4f}" for k, v in best.items() if k.startswith("test_") and isinstance(v, float))
    return (f"best: {best['params']}  {key} {best[key]:.4f} ± {best[key + '_std']:.4f} (n={best['n_repeats']})\n"
            f"final model (retrained on every non-test row, {best['epochs']} epochs): {tests}")


def command_report(args: argparse.Namespace) -> int:
    from .report import format_leaderboard, importance_line, render, status_line

    results, plots, report_path = render(args.folder)
    if len(results.board):
        print(format_leaderboard(results.board, results.params, results.objective, top=args.top))
        print()
    print(status_line(results))
    if results.best:
        print(_best_lines(results.best, results.objective.column))
    if line := importance_line(results):
        print(line)
    print(f"wrote {len(plots)} plots to {results.folder / 'plots'}/ and {report_path}")
    return 0


def command_predict(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from .predict import Predictor, shade, top_classes

    predictor = Predictor.load(args.model)
    grid, rows = predictor.read(Path(args.input))
    output = predictor.predict(rows)

    if predictor.task == "regression":
        records = [{"row": i, "predicted": float(v)} for i, v in enumerate(output)]
        lines = [f"row {r['row']}: {r['predicted']:.6g}" for r in records]
    else:
        tops = top_classes(output, predictor.classes, args.top)
        records = [{"row": i, "predicted": top[0][0], "probability": top[0][1],
                    "top": [{"class": c, "probability": p} for c, p in top]} for i, top in enumerate(tops)]
        lines = [f"row {r['row']}: {r['predicted']} (probability {r['probability']:.3f})  top {args.top}: "
                 + ", ".join(f"{t['class']} {t['probability']:.3f}" for t in r["top"]) for r in records]
    if args.json:
        print(json.dumps(records[0] if grid is not None else records, indent=None if grid is None else 2))
    elif grid is not None:
        print(f"what the model sees ({grid.shape[0]}x{grid.shape[1]}):")
        print(shade(grid))
        print(lines[0].replace("row 0: ", "predicted: "))
    else:
        print("\n".join(lines))
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line each on stderr: 'note: ...' for what the data showed, 'warning: ...' else
    (the library's own need no category)."""
    kind = "note" if issubclass(category, DataNote) else "warning"
    label = "" if issubclass(category, TuningWarning) else f"{category.__name__}: "
    print(f"{kind}: {label}{cli_words(one_line(message))}", file=sys.stderr)


def cli_words(message: str) -> str:
    """The library speaks Python (force=True, out=); the command line speaks of its flags."""
    return message.replace("force=True", "--force").replace("another out= folder", "another --out")


def _os_error(exc: OSError) -> str:
    """A failed read or write (read-only folder, full disk, ...) as 'path: reason'."""
    path = exc.filename2 if exc.filename2 is not None else exc.filename
    return f"{path}: {exc.strerror or exc}" if path is not None else f"{type(exc).__name__}: {exc}"


def main(argv: list[str] | None = None, started: float | None = None) -> int:
    """Entry point: returns the exit code (0 ok, 1 nothing could be selected, 2 bad input, 130 interrupted).

    `started` is the time.perf_counter() the process started at, for `--timings` (default: now).
    """
    started = time.perf_counter() if started is None else started
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "run")  # `python main.py [options]` is `run`
    args = build_parser().parse_args(argv)
    args.started = started
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return args.handler(args)
        except UserError as exc:
            print(f"error: {cli_words(one_line(exc))}", file=sys.stderr)
            return EXIT_USAGE
        except RunFailed as exc:
            print(f"error: {cli_words(one_line(exc))}", file=sys.stderr)
            return EXIT_FAILED
        except BrokenPipeError:  # `... | head` closed our stdout: stop quietly, as other tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
            return EXIT_FAILED
        except OSError as exc:
            print(f"error: {one_line(_os_error(exc))}", file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
