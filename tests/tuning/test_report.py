"""report.md and `python main.py report DIR`: from the folder's files alone, never changing the CSVs."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import QUICK, main, run_quick


def report_cli(*args):
    return main("report", *args)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report") / "exp"
    overrides = [*QUICK, "search.space={lr = [0.05, 0.2, 1e6], hidden_units = [8, 16]}"]  # lr 1e6 diverges
    run_quick(folder, overrides, render=True)
    return folder


def _csv_bytes(folder: Path) -> dict:
    return {name: (folder / name).read_bytes() for name in ("runs.csv", "history.csv")}


def test_run_writes_report_md_with_every_section(finished):
    text = (finished / "report.md").read_text()
    for heading in ("# Experiment `iris`", "## Chosen configuration", "## Leaderboard",
                    "## Failed and diverged trials", "## Plots"):
        assert heading in text
    assert "all 12 trials stored" in text and "test_accuracy **" in text
    assert "diverged" in text and "try a lower learning rate" in text
    assert "numpy " in text and "scikit-learn " in text  # versions
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", text)
    assert links and all((finished / link).is_file() for link in links)


def test_report_command_redraws_without_changing_the_csvs(finished):
    before = _csv_bytes(finished)
    (finished / "report.md").unlink()
    shutil.rmtree(finished / "plots")
    out = report_cli(finished)
    assert out.returncode == 0, out.stderr
    assert "val_accuracy (mean ± std)" in out.stdout and "all 12 trials stored" in out.stdout
    assert (finished / "report.md").is_file() and any((finished / "plots").glob("*.png"))
    assert _csv_bytes(finished) == before


def test_report_on_an_interrupted_experiment_says_what_is_missing(finished, tmp_path):
    folder = tmp_path / "interrupted"
    folder.mkdir()
    shutil.copy(finished / "config.toml", folder)
    lines = (finished / "runs.csv").read_text().splitlines(keepends=True)
    (folder / "runs.csv").write_text("".join(lines[:4]))  # header + 3 trials, no best.json
    kept = {line.split(",")[0] for line in lines[1:4]}
    history = (finished / "history.csv").read_text().splitlines(keepends=True)
    (folder / "history.csv").write_text(history[0] + "".join(h for h in history[1:] if h.split(",")[0] in kept))
    before = _csv_bytes(folder)
    out = report_cli(folder)
    assert out.returncode == 0, out.stderr
    assert "3 of 12 trials stored, 9 missing" in out.stdout
    assert "has not finished" in (folder / "report.md").read_text()
    assert _csv_bytes(folder) == before


def test_report_on_a_folder_that_is_not_an_experiment(tmp_path):
    out = report_cli(tmp_path)
    assert out.returncode == 2 and "is not an experiment folder" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_importance_is_read_back_while_the_files_it_came_from_are_unchanged(finished, tmp_path):
    from tuning.report import write_importance
    from tuning.results import read_results

    folder = tmp_path / "exp"
    shutil.copytree(finished, folder)
    computed = read_results(folder).importance
    assert (folder / ".importance-source").is_file() and not computed.empty
    (folder / "importance.csv").write_text("param,importance\nlr,1.0\n")  # a cache that differs, to tell them apart
    assert read_results(folder).importance["param"].tolist() == ["lr"]  # the files are unchanged: read back
    runs = (folder / "runs.csv").read_text()
    pd.read_csv(folder / "runs.csv").iloc[1:].to_csv(folder / "runs.csv", index=False)  # a trial fewer
    fresh = tmp_path / "fresh"
    shutil.copytree(folder, fresh)
    (fresh / ".importance-source").unlink()
    pd.testing.assert_frame_equal(read_results(folder).importance, read_results(fresh).importance)
    (folder / "runs.csv").write_text(runs)
    (folder / "importance.csv").write_text("garbage\x00")  # damaged: computed afresh
    pd.testing.assert_frame_equal(read_results(folder).importance, computed)
    write_importance(read_results(folder))
    pd.testing.assert_frame_equal(pd.read_csv(folder / "importance.csv"), computed)
