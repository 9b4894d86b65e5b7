"""Whole processes, as a user runs them: `python main.py run` against GridSearchCV doing the same job.

    python benchmarks/bench_process.py [--pairs 5] [--skip-default] [--out FILE.json]

1. The 27-configuration digits job (one repeat, holdout validation, refit on train+val, test once, plots and
   report.md included): `python main.py run --config <27-config toml> --out <tmp> --timings` against
   `python benchmarks/gridsearch_job.py` (GridSearchCV(MLPClassifier), both at n_jobs 2), interleaved in pairs
   (the order alternating), each a fresh process into a fresh folder. Prints each side's median wall, the
   median of the pairs' ratios, and the median share of each phase of the run (from its --timings lines;
   "exit" is the process's wall minus what the run counted: interpreter start and exit).
2. The default experiment (`python main.py`, 54 trials) at n_jobs 2 against n_jobs 1, interleaved pairs.
3. `python main.py report DIR` (redrawing every plot and report.md) on a finished default experiment.
Then whether each target of issue 15 is met. Wall times by time.perf_counter around subprocess.run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JOB_TOML = """# the 27-configuration digits job of benchmarks/gridsearch_job.py (the rest: the defaults)
[search]
repeats = 1
n_jobs = 2
"""
TARGETS = {"ratio": 1 / 3, "default_seconds": 2.5, "parallel_ratio": 0.55, "report_seconds": 1.0}


def timed(command: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    """Wall seconds of one process, and what it printed (a failure stops the benchmark)."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(command)}\n{result.stderr}")
    return wall, result


def phases(stderr: str) -> dict[str, float]:
    """The `timing: PHASE SECONDS s (SHARE%)` lines of a run's --timings, as {phase: seconds}."""
    return {line.split()[1]: float(line.split()[2]) for line in stderr.splitlines() if line.startswith("timing: ")}


def run_main(out: Path, *args: str) -> tuple[float, dict[str, float]]:
    wall, result = timed([sys.executable, "main.py", "run", "--out", str(out), "--timings", "--quiet", *args])
    stamps = phases(result.stderr)
    stamps["exit"] = wall - stamps["total"]  # interpreter start (before main.py) and exit: not seen from inside
    return wall, stamps


def median_shares(runs: list[tuple[float, dict[str, float]]]) -> dict[str, float]:
    """Each phase's median share of the process's wall."""
    names = [name for name in runs[0][1] if name != "total"]
    return {name: statistics.median(stamps[name] / wall for wall, stamps in runs) for name in names}


def print_shares(runs: list[tuple[float, dict[str, float]]]) -> None:
    for name, share in median_shares(runs).items():
        seconds = statistics.median(stamps[name] for _, stamps in runs)
        print(f"    {name:<13} {seconds:6.2f} s  {100 * share:5.1f}%")


def bench_job(pairs: int, scratch: Path) -> dict:
    config = scratch / "job27.toml"
    config.write_text(JOB_TOML)
    ours: list[tuple[float, dict]] = []
    theirs: list[float] = []
    for i in range(pairs):
        sides = [lambda: ours.append(run_main(scratch / f"job{len(ours)}", "--config", str(config))),
                 lambda: theirs.append(timed([sys.executable, "benchmarks/gridsearch_job.py", "--n-jobs", "2"])[0])]
        for side in sides if i % 2 == 0 else reversed(sides):
            side()
        print(f"  pair {i + 1}: runner {ours[-1][0]:.2f} s, GridSearchCV {theirs[-1]:.2f} s", flush=True)
    ratio = statistics.median(o[0] / t for o, t in zip(ours, theirs))
    print(f"27-config digits job as a process ({pairs} pairs): runner median "
          f"{statistics.median(o[0] for o in ours):.2f} s, GridSearchCV median {statistics.median(theirs):.2f} s, "
          f"median ratio {ratio:.3f}")
    print("  the runner's phases (median seconds, median share of its wall):")
    print_shares(ours)
    return {"pairs": pairs, "runner_seconds": [o[0] for o in ours], "gridsearchcv_seconds": theirs,
            "median_ratio": ratio, "runner_phase_shares": median_shares(ours)}


def bench_default(pairs: int, scratch: Path) -> dict:
    one: list[tuple[float, dict]] = []
    two: list[tuple[float, dict]] = []
    for i in range(pairs):
        sides = [lambda: two.append(run_main(scratch / f"two{len(two)}", "--n-jobs", "2")),
                 lambda: one.append(run_main(scratch / f"one{len(one)}", "--n-jobs", "1"))]
        for side in sides if i % 2 == 0 else reversed(sides):
            side()
        print(f"  pair {i + 1}: n_jobs 2 {two[-1][0]:.2f} s, n_jobs 1 {one[-1][0]:.2f} s", flush=True)
    ratio = statistics.median(t[0] / o[0] for t, o in zip(two, one))
    two_wall = statistics.median(t[0] for t in two)
    print(f"default experiment (54 trials) as a process ({pairs} pairs): n_jobs 2 median {two_wall:.2f} s, n_jobs 1 "
          f"median {statistics.median(o[0] for o in one):.2f} s, median ratio {ratio:.3f}")
    print("  n_jobs 2 phases:")
    print_shares(two)
    print("  n_jobs 1 phases:")
    print_shares(one)
    report = [timed([sys.executable, "main.py", "report", str(scratch / "two0")])[0] for _ in range(pairs)]
    print(f"`python main.py report DIR` on it: median {statistics.median(report):.2f} s ({pairs} runs)")
    return {"n_jobs_2_seconds": [t[0] for t in two], "n_jobs_1_seconds": [o[0] for o in one],
            "median_parallel_ratio": ratio, "n_jobs_2_phase_shares": median_shares(two),
            "n_jobs_1_phase_shares": median_shares(one), "report_seconds": report}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="interleaved pairs of processes per comparison")
    parser.add_argument("--skip-default", action="store_true", help="only the runner vs GridSearchCV comparison")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as scratch:
        figures["job"] = bench_job(args.pairs, Path(scratch))
        if not args.skip_default:
            figures["default"] = bench_default(args.pairs, Path(scratch))
    job = figures["job"]
    checks = [(f"runner wall <= 1/3 of GridSearchCV's (median ratio {job['median_ratio']:.3f}; 1/5 would be 0.200)",
               job["median_ratio"] <= TARGETS["ratio"])]
    if "default" in figures:
        default = figures["default"]
        two_wall, report = statistics.median(default["n_jobs_2_seconds"]), statistics.median(default["report_seconds"])
        checks += [(f"default run < 2.5 s (median {two_wall:.2f} s)", two_wall < TARGETS["default_seconds"]),
                   (f"n_jobs 2 / n_jobs 1 <= 0.55 (median {default['median_parallel_ratio']:.3f})",
                    default["median_parallel_ratio"] <= TARGETS["parallel_ratio"]),
                   (f"report < 1 s (median {report:.2f} s)", report < TARGETS["report_seconds"])]
    print("targets:")
    for text, met in checks:
        print(f"  {'met    ' if met else 'NOT met'}  {text}")
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
