"""What each figure shows: its panels, axis scales and labels, and the chosen configuration marked (with the
ones tied with it, lighter), for grid, random and successive-halving searches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.ticker import MaxNLocator

from tests.helpers import run_quick
from tuning.plots.params import CHOSEN, TIED
from tuning.results import read_results

GRID = ["data.dataset=iris", "train.epochs=5", "search.repeats=1", "search.n_jobs=1",
        "search.space={lr = [0.03, 0.1, 0.3], batch_size = [16, 32], hidden_units = [8, 16]}"]
RANDOM = ["data.dataset=iris", "train.epochs=4", "search.repeats=1", "search.n_jobs=1", "search.strategy=random",
          "search.n_trials=16", "search.space={lr = {low = 0.001, high = 0.3, log = true}, batch_size = [16, 32]}"]
HALVING = ["data.dataset=iris", "train.epochs=8", "search.repeats=1", "search.n_jobs=1", "search.strategy=halving",
           "search.space={lr = [0.01, 0.03, 0.1, 0.3], batch_size = [16, 32]}"]


def _run(tmp_path_factory, name: str, overrides: list[str]):
    folder = tmp_path_factory.mktemp("contents") / name
    run_quick(folder, overrides)
    return read_results(folder)


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    return _run(tmp_path_factory, "grid", GRID)


@pytest.fixture(scope="module")
def random_search(tmp_path_factory):
    return _run(tmp_path_factory, "random", RANDOM)


@pytest.fixture(scope="module")
def halving(tmp_path_factory):
    return _run(tmp_path_factory, "halving", HALVING)


def _panels(fig) -> list:
    """The figure's data axes (colour bars and hidden panels left out)."""
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def _tied_ids(results) -> set[int]:
    """Configurations within one validation row of the chosen one, computed from runs.csv directly."""
    ok = results.runs[results.runs["status"] == "ok"]
    means = ok.groupby("config_id")[results.objective.column].mean()
    chosen = means[results.best["config_id"]]
    return {c for c, m in means.items() if c != results.best["config_id"]
            and abs(m - chosen) < 1 / results.validation_rows - 1e-12}


def test_the_heatmap_marks_the_chosen_cell_and_its_ties_and_says_how_many(grid):
    fig = grid.plot_heatmap()
    panels = _panels(fig)
    assert [ax.get_title() for ax in panels] == ["hidden_units = 8", "hidden_units = 16"]
    for ax in panels:  # categorical axes say so, and no axis claims a log scale
        assert ax.get_xlabel() == "lr (values searched, evenly spaced)" and "log" not in ax.get_ylabel()
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0.03", "0.1", "0.3"]
    boxes = [(ax, patch) for ax in panels for patch in ax.patches]
    chosen = [(ax, p) for ax, p in boxes if p.get_label() == CHOSEN]
    assert len(chosen) == 1
    ax, box = chosen[0]
    params = grid.best["params"]
    x, y = box.get_x() + box.get_width() / 2, box.get_y() + box.get_height() / 2
    assert ax.get_title() == f"hidden_units = {params['hidden_units']}"
    assert [0.03, 0.1, 0.3][round(x)] == params["lr"] and [16, 32][round(y)] == params["batch_size"]
    tied = _tied_ids(grid)
    assert sum(p.get_label() == TIED for _, p in boxes) == len(tied)
    title = fig.get_suptitle()
    assert "red box: the chosen configuration" in title
    expected = f"dashed: {len(tied)} more within one validation row" if tied else "no other configuration within"
    assert expected in title
    colorbar = next(ax for ax in fig.axes if ax.get_label() == "<colorbar>")
    assert f"of {grid.validation_rows} validation rows" in colorbar.get_ylabel()


def test_the_halving_heatmap_says_each_cell_is_the_last_rung_reached(halving):
    fig = halving.plot_heatmap()
    title = fig.get_suptitle()
    assert "last rung its configuration reached" in title
    cells = [t.get_text() for ax in _panels(fig) for t in ax.texts if "\n" in t.get_text()]
    epochs = {int(c.split("\n")[1].split()[0].split("–")[-1]) for c in cells}
    assert len(epochs) > 1 and max(epochs) == 8  # scores after different budgets, each labelled with its own


def test_param_effects_marks_the_chosen_trials_and_reads_a_range_on_a_log_axis(grid, random_search):
    fig = grid.plot_param_effects()
    panels = _panels(fig)
    assert [ax.get_xlabel() for ax in panels] == [f"{p} (values searched, evenly spaced)" for p in grid.params]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["trial", "mean", CHOSEN]
    fig = random_search.plot_param_effects()
    lr = next(ax for ax in _panels(fig) if ax.get_xlabel().startswith("lr"))
    assert lr.get_xscale() == "log" and lr.get_xlabel() == "lr (log scale)"
    fig.canvas.draw()
    ticks = [t.get_text() for t in lr.get_xticklabels() if t.get_text()]
    assert ticks and all(t.replace(".", "").isdigit() for t in ticks), ticks  # 0.002, 0.005, 0.01: no 10^-3
    batch = next(ax for ax in _panels(fig) if ax.get_xlabel().startswith("batch_size"))
    assert batch.get_xscale() == "linear" and "evenly spaced" in batch.get_xlabel()


def test_parallel_coordinates_draw_one_line_per_configuration_with_the_chosen_on_top(grid, random_search):
    fig = grid.plot_parallel_coordinates()
    (ax,) = _panels(fig)
    names = [t.get_text() for t in ax.get_xticklabels()]
    assert names == ["batch_size\n(linear)", "hidden_units\n(linear)", "lr\n(log)", "mean val_accuracy\n(best on top)"]
    configs = len(grid.board[grid.board["mean"].notna()])
    chosen = [line for line in ax.lines if line.get_label() == CHOSEN]
    assert len(chosen) == 1 and chosen[0].get_zorder() > max(line.get_zorder() for line in ax.lines[:configs])
    drawn = [line for line in ax.lines if len(line.get_xdata()) == len(names)]  # not the axes' own lines
    assert len(drawn) == configs + 2  # every configuration, and the chosen one's outline and core
    row = grid.board[grid.board["config_id"] == grid.best["config_id"]].iloc[0]
    assert chosen[0].get_ydata()[-1] == pytest.approx(
        (row["mean"] - grid.board["mean"].min()) / (grid.board["mean"].max() - grid.board["mean"].min()))
    fig = random_search.plot_parallel_coordinates()
    names = [t.get_text() for t in _panels(fig)[0].get_xticklabels()]
    assert names[:2] == ["batch_size\n(linear)", "lr\n(log)"]


def test_learning_curves_by_param_has_a_panel_per_parameter_and_a_line_per_value(grid, random_search):
    fig = grid.plot_learning_curves_by_param()
    panels = _panels(fig)
    assert [ax.get_title() for ax in panels] == grid.params
    for ax, param in zip(panels, grid.params):
        values = sorted(grid.runs[param].unique())
        assert [line.get_label() for line in ax.lines] == [f"{v:g}" for v in values]
        assert isinstance(ax.xaxis.get_major_locator(), MaxNLocator) and ax.get_xlabel() == "epoch"
        # each line is the mean over every ok trial with that value, epoch by epoch
        ok = grid.runs[(grid.runs["status"] == "ok") & (grid.runs[param] == values[0])]
        expected = grid.history[grid.history["trial_id"].isin(ok["trial_id"])].groupby("epoch")[
            grid.objective.column].mean()
        np.testing.assert_allclose(ax.lines[0].get_ydata(), expected.to_numpy())
    lr = next(ax for ax in _panels(random_search.plot_learning_curves_by_param()) if ax.get_title() == "lr")
    assert len(lr.lines) == 4 and all("–" in line.get_label() for line in lr.lines)  # a range: 4 bins


def test_importance_bars_are_sorted_and_sum_to_the_whole(grid):
    fig = grid.plot_importance()
    (ax,) = _panels(fig)
    table = grid.importance
    widths = [bar.get_width() for bar in ax.patches]
    assert widths == pytest.approx(list(100 * table["importance"]))
    assert sum(widths) == pytest.approx(100)
    top_down = sorted(ax.get_yticklabels(), key=lambda t: -t.get_position()[1])
    assert [t.get_text() for t in top_down] == list(table["param"])  # most important on top


@pytest.mark.parametrize("name", ["plot_learning_curves", "plot_train_vs_val", "plot_rungs", "plot_final_model"])
def test_epoch_axes_have_whole_ticks_and_legends_sit_outside_the_data(grid, halving, name):
    results = halving if name == "plot_rungs" else grid
    fig = getattr(results, name)()
    assert fig.legends or name == "plot_final_model"  # figure legends, below the panels
    for ax in _panels(fig):
        assert ax.get_legend() is None
        if ax.get_xlabel() == "epoch":
            fig.canvas.draw()
            ticks = [t.get_position()[0] for t in ax.get_xticklabels()]
            assert all(float(t).is_integer() for t in ticks)


def test_an_unfinished_search_marks_its_best_so_far(grid, tmp_path):
    import shutil

    folder = tmp_path / "unfinished"
    shutil.copytree(grid.folder, folder)
    (folder / "best.json").unlink()
    results = read_results(folder)
    assert results.best is None
    fig = results.plot_heatmap()
    boxes = [p for ax in _panels(fig) for p in ax.patches if p.get_label() == CHOSEN]
    assert len(boxes) == 1
    top = pd.Series(results.board.iloc[0])
    assert top["config_id"] == grid.best["config_id"] or top["mean"] >= grid.board["mean"].max()


def test_the_chosen_configuration_is_named_in_the_learning_curves_and_starred_in_the_rungs(grid, halving):
    legend = [t.get_text() for t in grid.plot_learning_curves().legends[0].get_texts()]
    assert sum(text.endswith("(chosen)") for text in legend) == 1
    fig = halving.plot_rungs()
    assert "chosen configuration" in [t.get_text() for t in fig.legends[0].get_texts()]
    (ax,) = _panels(fig)
    star = [c for c in ax.collections if c.get_sizes()[0] == 160]
    assert len(star) == 1 and len(star[0].get_offsets()) == 1
