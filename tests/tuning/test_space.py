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
