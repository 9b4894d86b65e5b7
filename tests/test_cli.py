"""The command line as a user meets it: subprocesses, exit codes, one-line errors, kill and resume."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pandas as pd
import pytest

from tests.helpers import (
    QUICK,
    ROOT,
    assert_one_line_error,
    assert_same_csvs,
    cli,
    file_bytes,
    kill_after_rows,
    main,
    run_quick,
    sets,
)


def test_help_imports_nothing_heavy():
    code = ("import sys; sys.argv = ['main.py', '--help']\n"
            "import runpy\ntry:\n    runpy.run_path('main.py', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('matplotlib', 'pandas', 'joblib', 'sklearn', 'numpy') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True).stdout
    assert "examples:" in out and "run" in out and "report" in out
    assert out.strip().splitlines()[-1] == "HEAVY []"


def test_version_and_subcommand_help():
    assert main("--version").stdout.startswith("main.py ")
    run_help = main("run", "--help").stdout
    assert "--set" in run_help and "example" in run_help


def test_run_writes_the_folder_and_prints_a_leaderboard(tmp_path):
    result = cli("run", "--out", str(tmp_path / "exp"), *sets(QUICK))
    assert result.returncode == 0, result.stderr
    assert "val_accuracy (mean ± std)" in result.stdout and "test_accuracy" in result.stdout
    assert len(pd.read_csv(tmp_path / "exp" / "runs.csv")) == 8
    assert result.stderr == "", result.stderr  # no progress bar when stderr is not a terminal, no warnings


@pytest.fixture(scope="module")
def finished_folder(tmp_path_factory):
    """A finished quick experiment, made once; tests copy it before touching it."""
    folder = tmp_path_factory.mktemp("cli") / "exp"
    assert main("run", "--out", folder, *sets(QUICK), "--no-plots").returncode == 0  # its tests need no figures
    return folder


@pytest.mark.parametrize("args, message", [
    (["--set", "train.lr=0"], "train.lr must be a number > 0, got 0"),
    (["--set", "train.batch_size=0"], "train.batch_size must be an integer >= 1"),
    (["--set", "search.space.lr=[]"], "search.space.lr must be a non-empty list"),
    (["--set", "data.test_size=0.7", "--set", "data.val_size=0.5"], "test_size + data.val_size"),
    (["--n-jobs", "0"], "search.n_jobs must be a non-zero integer"),
    (["--set", "train.colour=1"], "unknown key 'train.colour'"),
    (["--config", "no-such-file.toml"], "cannot read"),
    (["--set", "data.dataset=no-such.csv", "--force"], "neither a built-in"),  # --force moves nothing yet
    (["--n-jobs", "two"], "invalid int value"),
    (["--bogus"], "unrecognized arguments"),
])
def test_bad_input_exits_2_with_one_line_and_leaves_the_folder_alone(finished_folder, tmp_path, args, message):
    folder = tmp_path / "exp"
    shutil.copytree(finished_folder, folder)
    before = file_bytes(folder)
    result = main("run", "--out", folder, *sets(QUICK), *args)
    assert_one_line_error(result, message)
    assert file_bytes(folder) == before


def test_changed_config_is_refused_without_force(finished_folder, tmp_path):
    folder = tmp_path / "exp"
    shutil.copytree(finished_folder, folder)
    result = main("run", "--out", folder, *sets(QUICK), "--set", "train.epochs=3")
    assert result.returncode == 2 and "train.epochs: 8 -> 3" in result.stderr and "--force" in result.stderr
    forced = main("run", "--out", folder, *sets(QUICK), "--set", "train.epochs=3", "--force", "--no-plots")
    assert forced.returncode == 0


@pytest.mark.slow
def test_sigkill_mid_experiment_then_resume_loses_and_repeats_nothing(tmp_path):
    # 12 trials on 2 workers; the parent and its workers are killed the moment the 5th trial is stored.
    overrides = [*QUICK, "search.n_jobs=2", "search.space={lr = [0.05, 0.1, 0.2], hidden_units = [8, 16]}"]
    args = sets(overrides)
    folder = tmp_path / "killed"
    kill_after_rows(5, "run", "--out", folder, *args)
    runs_path = folder / "runs.csv"
    complete = runs_path.read_text().splitlines()[1:]
    assert len(complete) == 5 and not (folder / "best.json").exists()

    resumed = main("run", "--out", folder, *args, "--no-plots")  # what is under test is the CSVs
    assert resumed.returncode == 0, resumed.stderr
    assert "7 trials run, 5 resumed" in resumed.stdout
    runs = pd.read_csv(runs_path)
    assert len(runs) == 12 and runs["trial_id"].is_unique
    assert set(complete) <= set(runs_path.read_text().splitlines())  # rows stored before the kill, timing included
    history = pd.read_csv(folder / "history.csv")
    assert len(history) == 12 * 8 and not history.duplicated(["trial_id", "epoch"]).any()

    run_quick(tmp_path / "fresh", overrides)  # uninterrupted
    assert_same_csvs(folder, tmp_path / "fresh")


def test_no_plots_skips_the_figures_and_report_md_and_says_how_to_draw_them(tmp_path):
    folder = tmp_path / "exp"
    result = main("run", "--out", folder, *sets(QUICK), "--no-plots", "--quiet")
    assert result.returncode == 0, result.stderr
    assert not (folder / "plots").exists() and not (folder / "report.md").exists()
    assert (folder / "best.json").is_file() and (folder / "model.npz").is_file()
    assert f"no plots/ or report.md: python main.py report {folder} draws them" in result.stdout
    assert "explains" not in result.stdout  # the importance is part of the report
    assert main("report", folder).returncode == 0 and len(list((folder / "plots").glob("*.png"))) == 8


def test_force_says_where_the_old_files_went_and_report_prints_what_run_printed(finished_folder, tmp_path):
    folder = tmp_path / "exp"
    shutil.copytree(finished_folder, folder)
    result = main("run", "--out", folder, *sets([*QUICK, "train.epochs=3"]), "--force")
    assert result.returncode == 0, result.stderr
    moved = next(folder.glob("replaced-*"))
    assert f"is now in {moved}/" in result.stdout and (moved / "runs.csv").is_file()
    assert "; search " in result.stdout and " s in all (refit, test, plots)" in result.stdout
    report = main("report", folder)
    header = [line for line in result.stdout.splitlines() if line.lstrip().startswith("rank")]
    assert header and header[0] in report.stdout.splitlines()  # the same columns, in the same order


def test_a_run_on_workers_draws_there_and_ends_without_a_word_after_it(tmp_path):
    # The command line draws its figures on the search's two workers (this process never imports matplotlib).
    # loky's resource tracker once warned of "leaked semlock objects" after the process had ended, for it
    # skipped its finalizers to exit fast; the tracker shares our stderr, so its words would be captured here.
    folder = tmp_path / "exp"
    result = cli("run", "--out", str(folder), *sets([*QUICK, "train.epochs=2", "search.repeats=1"]), "--n-jobs", "2",
                 "--quiet")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert len(list((folder / "plots").glob("*.png"))) == 8 and (folder / "importance.csv").is_file()
    assert "plots/importance.png" in (folder / "report.md").read_text()


def test_timings_prints_every_phase_on_stderr(tmp_path):
    result = main("run", "--out", str(tmp_path / "exp"), *sets(QUICK), "--timings", "--quiet")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    phases = [line.split()[1] for line in lines]
    assert phases == ["start-up", "data", "search", "refit+test", "plots+report", "other", "total"], lines
    seconds = [float(line.split()[2]) for line in lines]
    assert all(s >= 0 for s in seconds) and abs(sum(seconds[:-1]) - seconds[-1]) < 0.01, lines
    assert "timing:" not in result.stdout  # without the flag stderr is empty (test_run_writes_the_folder_...)
