"""Learning-rate schedules give torch.optim.lr_scheduler's lr every epoch: a stored reference always, live torch
when installed; `fit` logs the lr, trains with it, and puts the optimizer's lr back at the end.

The reference (`schedule_reference.json`) is written by `make_schedule_reference.py`; Python floats survive JSON
exactly, and the schedules use torch's own recurrences, so the lrs must be equal, not close.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from framework import (
    Callback,
    CosineAnnealingLR,
    Dense,
    ExponentialLR,
    LinearWarmup,
    Model,
    ReduceLROnPlateau,
    StepLR,
    TerminateOnNaN,
)
from framework import schedules as schedules_module
from framework.losses import SoftmaxCrossEntropy
from framework.optimizers import SGD, Adam

HERE = Path(__file__).parent
REFERENCE = json.loads((HERE / "schedule_reference.json").read_text())
CASES = {case["name"]: case for case in REFERENCE["cases"]}


def build(spec: dict):
    kwargs = dict(spec["kwargs"])
    if isinstance(kwargs.get("then"), dict):
        kwargs["then"] = build(kwargs["then"])
    return getattr(schedules_module, spec["class"])(**kwargs)


class Scripted(Callback):
    """Overwrites a logged value with a scripted one each epoch (before the schedules see it)."""

    def __init__(self, key: str, values: list[float]) -> None:
        self.key, self.values = key, values

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        logs[self.key] = self.values[epoch]


def tiny_model(lr: float, optimizer=SGD) -> Model:
    model = Model([Dense(3, 2)], seed=0)
    return model.compile(SoftmaxCrossEntropy(), optimizer(lr=lr))


DATA = (np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2)


def framework_lrs(case: dict) -> list[float]:
    """The lrs `fit` logs with the case's schedules (and its scripted metric)."""
    model = tiny_model(case["base_lr"])
    scripted = [Scripted(case["monitor"], case["values"])] if "monitor" in case else []
    history = model.fit(*DATA, epochs=case["epochs"], batch_size=8, validation_data=DATA,
                        callbacks=[*scripted, *(build(spec) for spec in case["schedules"])])
    assert model.optimizer.lr == case["base_lr"]  # put back when training ends
    return history.history["lr"]


@pytest.mark.parametrize("name", list(CASES))
def test_schedule_matches_stored_torch_lrs_exactly(name):
    assert framework_lrs(CASES[name]) == CASES[name]["lr"]


def test_reference_covers_every_schedule_and_option():
    used = [spec for case in CASES.values() for spec in case["schedules"]]
    assert {spec["class"] for spec in used} == {"StepLR", "ExponentialLR", "CosineAnnealingLR", "LinearWarmup",
                                               "ReduceLROnPlateau"}
    thens = {spec["kwargs"]["then"]["class"] for spec in used if spec["kwargs"].get("then")}
    assert thens == {"StepLR", "ExponentialLR", "CosineAnnealingLR"}
    assert len(set(CASES["cosine_past_t_max"]["lr"])) < CASES["cosine_past_t_max"]["epochs"]  # it comes back up
    assert len(set(CASES["plateau_min"]["lr"])) >= 4 and min(CASES["plateau_min"]["lr"]) == 0.02  # min_lr reached


@functools.cache
def load_reference_script():
    spec = importlib.util.spec_from_file_location("make_schedule_reference", HERE / "make_schedule_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", list(CASES))
def test_schedule_matches_live_torch(name):
    pytest.importorskip("torch")
    script = load_reference_script()
    assert [case["name"] for case in script.CASES] == list(CASES), "regenerate schedule_reference.json"
    live = script.torch_lrs(CASES[name])
    assert live == CASES[name]["lr"]  # the stored file is still what torch computes
    assert framework_lrs(CASES[name]) == live


# ---------------------------------------------------------------------------------------------- in fit
def test_every_epoch_logs_its_lr_last_with_or_without_a_schedule():
    history = tiny_model(0.05).fit(*DATA, epochs=3, validation_data=DATA)
    assert list(history.history)[-1] == "lr" and history.history["lr"] == [0.05] * 3
    history = tiny_model(0.05).fit(*DATA, epochs=3, callbacks=[ExponentialLR(0.5)])
    assert list(history.history) == ["loss", "accuracy", "lr"] and history.history["lr"] == [0.05, 0.025, 0.0125]


def test_the_logged_lr_is_what_the_epoch_trained_with(weights_identical):
    """A schedule equals setting the optimizer's lr by hand before each epoch."""
    scheduled, by_hand = tiny_model(0.1, Adam), tiny_model(0.1, Adam)
    history = scheduled.fit(*DATA, epochs=4, shuffle=False, callbacks=[LinearWarmup(2, StepLR(1, 0.5))])
    for lr in history.history["lr"]:
        by_hand.optimizer.lr = lr
        by_hand.fit(*DATA, epochs=1, shuffle=False)
    assert history.history["lr"] == [0.1 / 3, 0.1 * (1 / 3 + 1 / 3), 0.1, 0.05]
    assert weights_identical(scheduled.get_weights(), by_hand.get_weights())


def test_a_second_fit_replays_the_schedule_from_the_same_base():
    model = tiny_model(0.2)
    schedule = CosineAnnealingLR(T_max=4)
    first = model.fit(*DATA, epochs=4, callbacks=[schedule]).history["lr"]
    assert model.optimizer.lr == 0.2
    assert model.fit(*DATA, epochs=4, callbacks=[schedule]).history["lr"] == first


def test_the_lr_is_put_back_when_training_stops_on_a_divergence(mid_epoch_divergence, blobs, small_classifier):
    kwargs = dict(mid_epoch_divergence)
    lr = kwargs.pop("lr")
    model = small_classifier(lr=lr)
    history = model.fit(*blobs, callbacks=[StepLR(1, gamma=2.0), TerminateOnNaN()], **kwargs)
    assert history.diverged_epoch is not None and model.optimizer.lr == lr


def test_plateau_mode_auto_follows_the_metric_and_a_missing_monitor_is_named():
    assert ReduceLROnPlateau("val_loss").mode == "min" and ReduceLROnPlateau("val_f1").mode == "max"
    assert ReduceLROnPlateau("val_accuracy").mode == "max" and ReduceLROnPlateau("val_rmse").mode == "min"
    assert ReduceLROnPlateau("val_loss", mode="max").mode == "max"
    with pytest.raises(ValueError, match="ReduceLROnPlateau: monitor 'val_loss' is not logged; available: loss"):
        tiny_model(0.1).fit(*DATA, epochs=2, callbacks=[ReduceLROnPlateau()])


def test_verbose_output_shows_the_lr(capsys):
    tiny_model(1e-4).fit(*DATA, epochs=1, verbose=1)
    assert capsys.readouterr().out.rstrip().endswith("lr 0.0001")


@pytest.mark.parametrize("make,message", [
    (lambda: StepLR(step_size=0), r"StepLR: step_size must be an integer >= 1, got 0"),
    (lambda: StepLR(step_size=2.0), r"StepLR: step_size must be an integer >= 1, got 2.0"),
    (lambda: StepLR(2, gamma=-0.1), r"StepLR: gamma must be a number > 0, got -0.1"),
    (lambda: ExponentialLR(gamma=float("nan")), r"ExponentialLR: gamma must be a number > 0, got nan"),
    (lambda: CosineAnnealingLR(T_max=0), r"CosineAnnealingLR: T_max must be an integer >= 1, got 0"),
    (lambda: CosineAnnealingLR(5, eta_min=-1), r"CosineAnnealingLR: eta_min must be a number >= 0, got -1"),
    (lambda: LinearWarmup(0), r"LinearWarmup: warmup_epochs must be an integer >= 1, got 0"),
    (lambda: LinearWarmup(3, start_factor=0), r"LinearWarmup: start_factor must be a number > 0 and <= 1, got 0"),
    (lambda: LinearWarmup(3, start_factor=1.5), r"LinearWarmup: start_factor must be a number > 0 and <= 1, got 1.5"),
    (lambda: LinearWarmup(3, then=ReduceLROnPlateau()), r"LinearWarmup: then must be None, StepLR, ExponentialLR"),
    (lambda: LinearWarmup(3, then="cosine"), r"LinearWarmup: then must be None, StepLR"),
    (lambda: ReduceLROnPlateau(factor=1.0), r"ReduceLROnPlateau: factor must be a number > 0 and < 1, got 1.0"),
    (lambda: ReduceLROnPlateau(patience=-1), r"ReduceLROnPlateau: patience must be an integer >= 0, got -1"),
    (lambda: ReduceLROnPlateau(min_lr=-1e-3), r"ReduceLROnPlateau: min_lr must be a number >= 0, got -0.001"),
    (lambda: ReduceLROnPlateau(threshold=-1), r"ReduceLROnPlateau: threshold must be a number >= 0, got -1"),
    (lambda: ReduceLROnPlateau(mode="up"), r"ReduceLROnPlateau: mode must be 'auto', 'min' or 'max', got 'up'"),
    (lambda: ReduceLROnPlateau(cooldown=True), r"ReduceLROnPlateau: cooldown must be an integer >= 0, got True"),
])
def test_bad_schedule_arguments_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_schedules_show_their_settings():
    assert repr(LinearWarmup(2, CosineAnnealingLR(8))) == (
        "LinearWarmup(warmup_epochs=2, then=CosineAnnealingLR(T_max=8, eta_min=0.0), start_factor=0.3333333333333333)")
    assert repr(ReduceLROnPlateau()).startswith("ReduceLROnPlateau(monitor='val_loss', factor=0.1, patience=10")
