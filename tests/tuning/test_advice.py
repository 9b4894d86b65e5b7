"""Advice on a finished search: a choice at the edge of the space, and ties within one validation row."""

from __future__ import annotations

import pandas as pd

from tuning.advice import advice

SPACE = {"lr": [0.01, 0.05, 0.1], "batch_size": [16, 32], "activation": ["relu", "tanh", "sigmoid"],
         "dropout": {"low": 0.0, "high": 0.5}, "hidden_units": {"low": 8, "high": 512, "log": True}}


def _board(means):
    return pd.DataFrame({"config_id": range(len(means)), "mean": means, "all_ok": True})


def test_a_choice_at_the_edge_of_a_list_or_range_is_pointed_out():
    chosen = {"lr": 0.1, "batch_size": 32, "activation": "sigmoid", "dropout": 0.49, "hidden_units": 12}
    lines = advice(SPACE, chosen, _board([0.9, 0.5]), "accuracy", n_val=100)
    assert lines == [
        "lr = 0.1 is the largest value searched: the best may lie beyond it; consider widening the range",
        "dropout = 0.49 is near the top of the range searched (0..0.5): the best may lie beyond it; consider "
        "widening the range",
        "hidden_units = 12 is near the bottom of the range searched (8..512): the best may lie beyond it; "
        "consider widening the range",
    ]
    # two values (every choice is an edge), the middle of a list or range, text: nothing to say
    assert advice(SPACE, {"lr": 0.05, "batch_size": 16, "dropout": 0.2, "hidden_units": 64}, _board([0.9]),
                  "accuracy", 100) == []


def test_configurations_within_one_validation_row_are_a_tie():
    board = _board([0.950, 0.948, 0.941, 0.90])  # one row of 200 is 0.005
    assert advice({}, {}, board, "accuracy", n_val=200) == [
        "2 configurations score within one validation row (0.5 points) of the best: too close to tell apart; "
        "more folds (data.folds) or repeats would separate them"]
    assert advice({}, {}, board, "rmse", n_val=200) == []  # errors in the target's units do not move by rows
