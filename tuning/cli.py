"""Command line: `python main.py [run|report|predict] ...`. Parses, calls, prints; no logic of its own.

Heavy modules (numpy, pandas, joblib, matplotlib) are imported inside the commands, so that
`--help` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version

from .errors import UserError

COMMANDS = ("run", "report", "predict")
EXIT_USAGE, EXIT_INTERRUPTED = 2, 130


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error on one line (and exits 2), without the usage block."""

    def error(self, message: str) -> None:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _version() -> str:
    try:
        return version("numpy-mlp-tuner")
    except PackageNotFoundError:
        return "0.1.0"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="main.py",
        description="Search hyperparameters of a NumPy neural network, log every trial and epoch, "
                    "select on validation data, retrain and test once.",
        epilog="examples:\n  python main.py                       # the default digits grid\n"
               "  python main.py run --config exp.toml --n-jobs 2\n"
               "  python main.py report results/digits\n"
               "  python main.py predict results/digits/model.npz digit.png",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="{run,report,predict}", parser_class=OneLineParser)

    run = sub.add_parser(
        "run", help="run (or resume) an experiment (the default command)",
        description="Run an experiment: search, log runs.csv and history.csv, select on validation data, "
                    "retrain the best on train+val, test once. Running it again resumes.",
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
    run.set_defaults(handler=command_run)
    return parser


def command_run(args: argparse.Namespace) -> int:
    from .config import load_experiment

    overrides = list(args.overrides)
    if args.n_jobs is not None:
        overrides.append(f"search.n_jobs={args.n_jobs}")
    experiment = load_experiment(args.config, overrides)

    from .report import format_leaderboard
    from .runner import prepare, run_experiment
    from .trial import score_key

    prep = prepare(experiment, args.out, args.force)
    bar = _progress_bar(len(prep.specs), args.quiet)
    best_so_far = {}

    def on_trial(record: dict, done: int, total: int) -> None:
        key = score_key(prep.data.task)
        value = record.get(key)
        if record["status"] == "ok" and value is not None:
            better = max if key == "val_accuracy" else min
            best_so_far[key] = better(best_so_far.get(key, value), value)
        if bar is not None:
            bar.n = done
            bar.set_postfix({f"best {key}": f"{best_so_far[key]:.4f}"} if best_so_far else {}, refresh=True)

    try:
        result = run_experiment(experiment, prepared=prep, on_trial=on_trial)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        print(f"interrupted: finished trials are stored in {prep.folder}; run the same command again to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if bar is not None:
            bar.close()
    best = result.best
    key = score_key(prep.data.task)
    if not args.quiet:
        print(format_leaderboard(result.leaderboard, prep.params, prep.data.task))
        print()
    skipped = result.n_trials - result.n_run
    print(f"{result.n_run} trials run" + (f", {skipped} resumed from the folder" if skipped else "")
          + f" in {result.wall_seconds:.1f} s on {max(result.n_workers, 1)} worker(s)")
    print(f"best: {best['params']}  {key} {best[key]:.4f} ± {best[key + '_std']:.4f} (n={best['n_repeats']})")
    tests = "  ".join(f"{k} {v:.4f}" for k, v in best.items() if k.startswith("test_") and isinstance(v, float))
    print(f"final model (retrained on train+val, {best['epochs']} epochs): {tests}")
    print(f"results in {result.folder}/ (runs.csv, history.csv, best.json, model.npz)")
    return 0


def _progress_bar(total: int, quiet: bool):
    """A tqdm bar on stderr, or None when quiet or stderr is not a terminal."""
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="trial", file=sys.stderr, dynamic_ncols=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns the exit code (0 ok, 2 bad input, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "run")  # `python main.py [options]` is `run`
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
