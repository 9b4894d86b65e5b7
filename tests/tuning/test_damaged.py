"""Damaged folders: garbage lines, text in number cells, repeated rows, a deleted or cut history.

`run` and `report` name the file and line of damage they cannot repair, and repair the rest: a repeated
line counts once, and trials whose epochs are gone from history.csv run again (with the same numbers).
"""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from tests.helpers import QUICK, assert_one_line_error, assert_same_csvs, file_bytes, main, run_quick, sets
from tuning.errors import TuningWarning


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    folder = tmp_path_factory.mktemp("damaged") / "exp"
    run_quick(folder, QUICK)
    return folder


@pytest.fixture
def folder(finished, tmp_path):
    copy = tmp_path / "exp"
    shutil.copytree(finished, copy)
    return copy


def _lines(path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def _edit_cell(path, line: int, column: str, value: str) -> None:
    lines = _lines(path)
    header = lines[0].rstrip("\n").split(",")
    cells = lines[line - 1].rstrip("\n").split(",")
    cells[header.index(column)] = value
    lines[line - 1] = ",".join(cells) + "\n"
    path.write_text("".join(lines))


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "runs.csv").open("a").write("hello world\n"), "runs.csv line 10 is damaged (1 cells, expected 22)"),
    (lambda f: _edit_cell(f / "runs.csv", 3, "val_loss", "abc"), "runs.csv line 3, column val_loss: 'abc' is not a"),
    (lambda f: _edit_cell(f / "runs.csv", 4, "status", "okk"), "runs.csv line 4, column status: 'okk' is not one of"),
    (lambda f: _edit_cell(f / "history.csv", 20, "epoch", "x"), "history.csv line 20, column epoch: 'x' is not a"),
    (lambda f: (f / "history.csv").open("ab").write(b"\xff\xfe,1,2\n"), "history.csv line 66 is damaged (bytes that"),
    (lambda f: (f / "runs.csv").open("a").write(_lines(f / "runs.csv")[1].replace("0.05", "0.07", 1)),
     "runs.csv lines 2 and 10 both hold"),
])
def test_damage_that_cannot_be_repaired_is_named_by_file_and_line(folder, damage, message):
    damage(folder)
    before = file_bytes(folder)
    for command in (["run", "--out", folder, *sets(QUICK)], ["report", folder]):
        result = main(*command)
        assert_one_line_error(result, message)
        assert "delete that line" in result.stderr
    assert file_bytes(folder) == before


def test_a_row_of_no_trial_of_the_experiment_is_refused(folder):
    row = _lines(folder / "runs.csv")[1].split(",")
    (folder / "runs.csv").open("a").write(",".join(["0123456789ab", *row[1:]]))
    assert_one_line_error(main("run", "--out", folder, *sets(QUICK)),
                          "runs.csv line 10 holds 0123456789ab, which is no trial of this experiment")


def test_a_repeated_line_counts_once(folder, finished):
    runs = folder / "runs.csv"
    runs.write_text("".join(_lines(runs) + [_lines(runs)[3]]))  # line 4 again, at line 10
    with pytest.warns(TuningWarning, match=r"runs.csv repeats 1 line\(s\) exactly \(line 10 repeats line 4\)"):
        result = run_quick(folder, QUICK)
    assert result.n_run == 0 and result.n_resumed == 8
    assert_same_csvs(folder, finished)  # the repeat is gone from the file too
    report = main("report", folder)  # the reader counts it once without touching the file
    assert report.returncode == 0 and "all 8 trials stored" in report.stdout


@pytest.mark.parametrize("cut", ["the whole file", "one trial's epochs"])
def test_trials_whose_history_is_gone_run_again(folder, finished, cut):
    history = folder / "history.csv"
    if cut == "the whole file":
        history.unlink()
    else:
        lines = _lines(history)
        trial = lines[9].split(",")[0]
        history.write_text("".join(line for line in lines if not line.startswith(trial + ",")))
    with pytest.warns(TuningWarning, match=r"lacks epochs of \d stored trial\(s\)"):
        result = run_quick(folder, QUICK)
    assert result.n_run == (8 if cut == "the whole file" else 1)
    assert_same_csvs(folder, finished)  # re-run, the same numbers


def test_the_cli_prints_a_repair_as_one_warning_line(folder):
    (folder / "history.csv").unlink()
    result = main("run", "--out", folder, *sets(QUICK), "--no-plots")
    assert result.returncode == 0
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "lacks epochs of 8 stored trial(s)" in warnings[0]
    assert len(pd.read_csv(folder / "history.csv")) == 8 * 8
