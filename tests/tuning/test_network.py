"""The network a parameter set builds: widths, optimizers, schedules, and schedules carried across segments."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from framework import BatchNorm, Dense
from framework.optimizers import SGD, Adam, AdamW, RMSProp
from tests.helpers import run_quick
from tuning.config import load_experiment
from tuning.network import (
    ContinuedSchedule,
    build_model,
    build_optimizer,
    build_schedule,
    layer_sizes,
    parameter_count,
)


def settings(**changes) -> dict:
    return {**load_experiment().train, **changes}


def test_widths_come_from_hidden_or_the_shorthand():
    assert layer_sizes(settings(hidden=[128, 64]), 10, 3) == [10, 128, 64, 3]
    assert layer_sizes(settings(hidden_units=16, hidden_layers=2), 10, 3) == [10, 16, 16, 3]
    assert parameter_count(settings(hidden=[8]), 4, 2) == 5 * 8 + 9 * 2
    assert parameter_count(settings(hidden=[8], batchnorm=True), 4, 2) == 5 * 8 + 9 * 2 + 2 * 8


def test_the_model_has_the_settings_layers_loss_and_init():
    model = build_model(settings(hidden=[6, 5], batchnorm=True, label_smoothing=0.1, init="xavier"), 4, 3,
                        "classification", seed=0)
    dense = [layer for layer in model.layers if isinstance(layer, Dense)]
    assert [d.n_out for d in dense] == [6, 5, 3]
    assert sum(isinstance(layer, BatchNorm) for layer in model.layers) == 2
    assert model.loss.label_smoothing == 0.1
    assert all(d.init == "xavier" for d in dense)


@pytest.mark.parametrize(("name", "kind"), [("sgd", SGD), ("adam", Adam), ("adamw", AdamW), ("rmsprop", RMSProp)])
def test_optimizers_take_their_settings(name, kind):
    optimizer = build_optimizer(settings(optimizer=name, lr=0.01, beta1=0.8, beta2=0.99, clip_norm=1.5,
                                         weight_decay=1e-3))
    assert type(optimizer) is kind and optimizer.lr == 0.01 and optimizer.clip_norm == 1.5
    if name.startswith("adam"):
        assert (optimizer.beta1, optimizer.beta2) == (0.8, 0.99)
    assert build_optimizer(settings(clip_norm=0.0)).clip_norm is None  # 0 = off


def lr_path(schedule, val_losses, model=None) -> list[float]:
    """The lr each epoch trains with when `schedule` runs through epochs with these val_losses, as fit runs it."""
    model = model or SimpleNamespace(optimizer=SimpleNamespace(lr=0.1))
    base = model.optimizer.lr
    for callback in schedule:
        callback.model = model
        callback.on_train_begin()
    lrs = []
    for epoch, loss in enumerate(val_losses):
        for callback in schedule:
            callback.on_epoch_begin(epoch)
        lrs.append(model.optimizer.lr)
        for callback in schedule:
            callback.on_epoch_end(epoch, {"val_loss": loss})
    model.optimizer.lr = base  # fit puts the lr back
    return lrs


def test_each_schedule_gives_torchs_trajectory():
    flat = [1.0] * 8
    assert lr_path(build_schedule(settings(schedule="constant")), flat) == [0.1] * 8
    assert lr_path(build_schedule(settings(schedule="step", step_size=3, gamma=0.5)), flat) == pytest.approx(
        [0.1] * 3 + [0.05] * 3 + [0.025] * 2)
    assert lr_path(build_schedule(settings(schedule="exponential", gamma=0.5)), flat[:3]) == pytest.approx(
        [0.1, 0.05, 0.025])
    cosine = lr_path(build_schedule(settings(schedule="cosine", epochs=8, min_lr=0.0)), flat)
    assert cosine == pytest.approx([0.05 * (1 + np.cos(np.pi * e / 8)) for e in range(8)])
    warm = lr_path(build_schedule(settings(schedule="constant", warmup_epochs=2)), flat[:4])
    assert warm == pytest.approx([0.1 / 3, 0.1 * 2 / 3, 0.1, 0.1])
    plateau = lr_path(build_schedule(settings(schedule="plateau", plateau_patience=1, gamma=0.5)), flat[:5])
    assert plateau == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05])  # no improvement after epoch 0: 2 bad epochs


@pytest.mark.parametrize("changes", [
    {"schedule": "cosine", "warmup_epochs": 3, "epochs": 12, "min_lr": 0.001},
    {"schedule": "step", "step_size": 4, "gamma": 0.3},
    {"schedule": "plateau", "plateau_patience": 1, "gamma": 0.5, "warmup_epochs": 2},
])
@pytest.mark.parametrize("start", [1, 5, 9])
def test_a_schedule_continued_in_a_later_fit_goes_on_as_if_never_stopped(changes, start):
    losses = [1.0, 0.9, 0.95, 0.97, 0.8, 0.85, 0.86, 0.87, 0.7, 0.71, 0.72, 0.73]
    unbroken = lr_path(build_schedule(settings(**changes)), losses)
    model = SimpleNamespace(optimizer=SimpleNamespace(lr=0.1))
    first = lr_path(build_schedule(settings(**changes)), losses[:start], model)
    past = [{"val_loss": v} for v in losses[:start]]
    rest = lr_path([ContinuedSchedule(build_schedule(settings(**changes)), model, past)], losses[start:], model)
    assert first + rest == unbroken


@pytest.fixture(scope="module")
def halved_with_a_schedule(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scheduled") / "exp"
    run_quick(folder, ["data.dataset=iris", "search.strategy=halving", "search.n_jobs=1", "search.repeats=1",
                       "train.epochs=9", "search.min_epochs=1", "search.eta=3", "train.schedule=cosine",
                       "train.warmup_epochs=2", "search.space={lr = [0.02, 0.1, 0.3]}"])
    return folder


def test_halving_segments_follow_one_schedule_and_the_refit_follows_the_chosen_trial(halved_with_a_schedule):
    history = pd.read_csv(halved_with_a_schedule / "history.csv")
    finalist = history[history["rung"] == history["rung"].max()]["trial_id"].iloc[0]
    lrs = history[history["trial_id"] == finalist].sort_values("epoch")
    lr = lrs["lr"].iloc[0] * 3  # the first warm-up epoch trains with a third of the base lr
    expected = lr_path(build_schedule(settings(schedule="cosine", warmup_epochs=2, epochs=9)), [1.0] * 9,
                       SimpleNamespace(optimizer=SimpleNamespace(lr=lr)))
    assert lrs["lr"].tolist() == pytest.approx(expected)
    best = json.loads((halved_with_a_schedule / "best.json").read_text())
    runs = pd.read_csv(halved_with_a_schedule / "runs.csv")
    (chosen,) = runs.loc[runs["config_id"] == best["config_id"], "trial_id"]  # one repeat: one trial
    chosen_lrs = history[history["trial_id"] == chosen].sort_values("epoch")["lr"].tolist()
    assert best["final_history"]["lr"] == chosen_lrs[:best["epochs"]] and len(chosen_lrs) == 9


def test_history_csv_has_each_epochs_lr_and_runs_csv_keeps_the_searched_lr(halved_with_a_schedule):
    runs = pd.read_csv(halved_with_a_schedule / "runs.csv")
    assert sorted(runs["lr"].unique()) == [0.02, 0.1, 0.3]
    history = pd.read_csv(halved_with_a_schedule / "history.csv")
    assert "lr" in history.columns and history["lr"].gt(0).all()


def test_conditional_and_list_settings_in_the_csvs_and_the_leaderboard(tmp_path):
    from tuning.report import format_leaderboard
    from tuning.results import read_results

    run_quick(tmp_path, ["data.dataset=iris", "train.epochs=2", "search.repeats=1", "search.n_jobs=1",
                         'search.space={optimizer = ["sgd", "adam"], momentum = [0.5, 0.9], hidden = [[4], [8, 4]]}'])
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert len(runs) == (2 + 1) * 2
    assert runs.loc[runs["optimizer"] == "adam", "momentum"].isna().all()
    assert runs.loc[runs["optimizer"] == "sgd", "momentum"].notna().all()
    assert set(runs["hidden"]) == {"4", "8-4"}
    results = read_results(tmp_path)
    table = format_leaderboard(results.board, results.params, results.objective)
    assert "8-4" in table and "[8, 4]" not in table


@pytest.mark.parametrize("setting", ["train.label_smoothing=0.1", "search.space={label_smoothing = [0.0, 0.1]}",
                                     "search.space={label_smoothing = {low = 0.0, high = 0.2}}"])
def test_label_smoothing_on_a_regression_task_is_refused(tmp_path, setting):
    from tuning.errors import ConfigError
    from tuning.prepare import prepare

    experiment = load_experiment(None, ["data.dataset=diabetes", "search.strategy=random", "search.n_trials=2",
                                        setting])
    with pytest.raises(ConfigError, match="label_smoothing: applies to classification only"):
        prepare(experiment, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before anything is written
