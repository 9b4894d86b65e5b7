"""Search spaces: grid order, random draws inside their bounds, stable trial ids and seeds."""

from __future__ import annotations

import math

import numpy as np

from tuning.config import load_experiment
from tuning.space import candidates, trial_specs


def test_grid_is_every_combination_once():
    experiment = load_experiment()
    grid = candidates(experiment)
    assert len(grid) == 27
    assert len({tuple(sorted(p.items())) for p in grid}) == 27
    assert {p["lr"] for p in grid} == {0.01, 0.05, 0.1}


def test_specs_are_candidates_times_repeats_with_unique_ids_and_seeds():
    specs = trial_specs(load_experiment(), ["fingerprint"])
    assert len(specs) == 54
    assert len({s.trial_id for s in specs}) == 54
    assert len({s.seed for s in specs}) == 54
    assert all(s.train["lr"] == s.params["lr"] for s in specs)


def test_ids_and_seeds_depend_on_identity_not_position():
    experiment = load_experiment()
    specs = {s.trial_id: s.seed for s in trial_specs(experiment, ["fp"])}
    # A smaller grid holding some of the same trials gives those trials the same ids and seeds.
    sub = load_experiment(None, ["search.space={lr = [0.1], batch_size = [64], hidden_units = [128, 32]}"])
    for spec in trial_specs(sub, ["fp"]):
        assert specs[spec.trial_id] == spec.seed
    # Another experiment seed or other data changes the seeds / ids.
    other_seed = trial_specs(load_experiment(None, ["seed=1"]), ["fp"])
    assert {s.seed for s in other_seed}.isdisjoint(set(specs.values()))
    assert {s.trial_id for s in trial_specs(experiment, ["other-data"])}.isdisjoint(specs)


def test_random_search_draws_inside_bounds_and_is_reproducible():
    overrides = ["search.strategy=random", "search.n_trials=200",
                 "search.space={lr = {low = 1e-4, high = 1.0, log = true}, hidden_units = {low = 8, high = 256, "
                 "log = true}, dropout = {low = 0.0, high = 0.5}, activation = ['relu', 'tanh']}"]
    experiment = load_experiment(None, overrides)
    draws = candidates(experiment)
    assert len(draws) == 200
    lr = np.array([d["lr"] for d in draws])
    assert lr.min() >= 1e-4 and lr.max() <= 1.0
    # Log-uniform: about as many draws per decade (4 decades, 50 expected each).
    per_decade = np.histogram(np.log10(lr), bins=[-4, -3, -2, -1, 0])[0]
    assert per_decade.min() > 25
    units = [d["hidden_units"] for d in draws]
    assert all(isinstance(u, int) and 8 <= u <= 256 for u in units)
    assert all(0.0 <= d["dropout"] <= 0.5 for d in draws)
    assert {d["activation"] for d in draws} == {"relu", "tanh"}
    assert candidates(load_experiment(None, overrides)) == draws
    assert candidates(load_experiment(None, [*overrides, "seed=7"])) != draws


def test_random_search_over_lists_only_does_not_repeat_a_config():
    experiment = load_experiment(None, ["search.strategy=random", "search.n_trials=9"])
    draws = candidates(experiment)
    assert len({tuple(sorted(d.items())) for d in draws}) == 9
    assert all(isinstance(d["lr"], float) and not math.isnan(d["lr"]) for d in draws)


def test_a_grid_does_not_multiply_settings_where_they_do_not_apply():
    experiment = load_experiment(None, ['search.space={optimizer = ["sgd", "adam", "adamw"], momentum = [0.5, 0.9], '
                                        'beta1 = [0.8, 0.9], schedule = ["constant", "step"], step_size = [2, 5]}'])
    grid = candidates(experiment)
    # sgd: 2 momenta; adam, adamw: 2 beta1s each; x (constant + 2 step sizes)
    assert len(grid) == (2 + 2 + 2) * 3
    assert len({tuple(sorted(map(str, p.items()))) for p in grid}) == len(grid)
    for config in grid:
        assert (config["momentum"] is None) == (config["optimizer"] != "sgd")
        assert (config["beta1"] is None) == (config["optimizer"] == "sgd")
        assert (config["step_size"] is None) == (config["schedule"] != "step")
    specs = trial_specs(experiment, ["data"])
    assert len({spec.trial_id for spec in specs}) == len(specs)


def test_layer_width_lists_are_grid_values():
    experiment = load_experiment(None, ["search.space={hidden = [[64], [128, 64]], hidden_units = [8, 16]}"])
    grid = candidates(experiment)
    # hidden_units applies only when hidden is empty: two configurations, not four
    assert sorted(map(str, (p["hidden"] for p in grid))) == ["[128, 64]", "[64]"]
    assert all(p["hidden_units"] is None for p in grid)
