"""Search spaces -> trial specs, each with a stable id and a seed derived from it.

A trial is (params, repeat). Its id hashes the full training settings, the repeat and the
data fingerprint; its seed comes from the experiment seed and that id through
`numpy.random.SeedSequence`, so no result depends on n_jobs or on the order trials finish.
"""

from __future__ import annotations

import hashlib
import json
from itertools import product

import numpy as np

from .config import Experiment
from .errors import ConfigError
from .schema import CONDITIONS, INTEGER_TRAIN_KEYS, draws_candidates, proposes_candidates
from .seeds import RANDOM_SEARCH, derive_seed
from .trial import TrialSpec

MAX_REDRAWS = 100  # rounds of drawing again for repeats; a space with room to spare needs one or two


class _LogUniformInt:
    """Integers drawn log-uniformly from [low, high] (scipy's `rvs` interface for ParameterSampler)."""

    def __init__(self, low: int, high: int) -> None:
        from scipy.stats import loguniform

        self._dist = loguniform(low, high + 1)
        self.high = high

    def rvs(self, random_state=None) -> int:
        return min(int(self._dist.rvs(random_state=random_state)), self.high)


def _distribution(key: str, spec: dict):
    """A scipy distribution for a `{low, high, log}` range (integers for integer settings)."""
    from scipy.stats import loguniform, randint, uniform

    low, high, log = spec["low"], spec["high"], spec.get("log", False)
    if f"train.{key}" in INTEGER_TRAIN_KEYS:
        return _LogUniformInt(low, high) if log else randint(low, high + 1)
    return loguniform(low, high) if log else uniform(low, high - low)


def _plain(value):
    """numpy scalars from scipy draws -> Python numbers, so params serialise the same everywhere."""
    return value.item() if isinstance(value, np.generic) else value


def applicable(settings: dict, defaults: dict) -> dict:
    """`settings` (some train keys) with every one that does not apply to the whole (`defaults` updated with
    them) set to None: momentum under Adam, a step schedule's step_size under a cosine one, ..."""
    full = {**defaults, **settings}
    return {key: value if key not in CONDITIONS or CONDITIONS[key](full) else None for key, value in settings.items()}


def _distinct(candidates, n: int | None = None) -> list[dict]:
    """The first of each distinct candidate, in order (up to `n`): a grid or draw that differs only in
    settings that do not apply is one configuration."""
    kept, seen = [], set()
    for params in candidates:
        key = json.dumps(params, sort_keys=True)
        if key not in seen:
            seen.add(key)
            kept.append(params)
            if n is not None and len(kept) == n:
                break
    return kept


def candidates(experiment: Experiment) -> list[dict]:
    """The parameter sets to try, in a fixed order: the grid, or `n_trials` distinct random draws."""
    space = experiment.space
    if not space:
        return [{}]
    if proposes_candidates(experiment.search):
        raise ValueError("TPE proposes its configurations during the search; see tuning.tpe")
    if draws_candidates(experiment.search):  # random search; halving over a range starts from draws too
        return _distinct_draws(experiment)
    keys = sorted(space)  # scikit-learn's ParameterGrid order: sorted keys, the last one varying fastest
    grid = (applicable(dict(zip(keys, values)), experiment.train) for values in product(*(space[k] for k in keys)))
    return _distinct(grid)


def _distinct_draws(experiment: Experiment) -> list[dict]:
    """`n_trials` distinct random configurations: a draw that repeats an earlier one is drawn again.

    The first draws are ParameterSampler's own; the config check has made sure the space holds enough.
    """
    from sklearn.model_selection import ParameterSampler

    n = experiment.search["n_trials"]
    distributions = {k: (_distribution(k, v) if isinstance(v, dict) else v) for k, v in experiment.space.items()}
    # ParameterSampler wants a legacy RandomState; seed it from the experiment's own stream.
    state = np.random.RandomState(derive_seed(experiment.seed, RANDOM_SEARCH))
    draws: list[dict] = []
    for _ in range(MAX_REDRAWS):
        new = (applicable({k: _plain(v) for k, v in sorted(params.items())}, experiment.train)
               for params in ParameterSampler(distributions, n_iter=n - len(draws), random_state=state))
        draws = _distinct([*draws, *new], n)
        if len(draws) == n:
            return draws
    raise ConfigError(f"config: drew only {len(draws)} distinct configurations of the {n} asked for "
                      f"(search.n_trials) in {MAX_REDRAWS} rounds; lower n_trials or widen search.space")


def trial_id(train: dict, repeat: int, data_fingerprint: str) -> str:
    """A short stable hash of what determines a trial's result (besides the experiment seed)."""
    text = json.dumps({"train": train, "repeat": repeat, "data": data_fingerprint}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def trial_seed(experiment_seed: int, identity: str) -> int:
    """A 32-bit seed from the experiment seed and the trial id (independent of dispatch order)."""
    return derive_seed(experiment_seed, *(int(identity[i:i + 8], 16) for i in range(0, len(identity), 8)))


def n_configs(experiment: Experiment) -> int:
    """How many configurations the search tries: the grid's, or n_trials drawn or proposed."""
    return experiment.search["n_trials"] if proposes_candidates(experiment.search) else len(candidates(experiment))


def specs_for(experiment: Experiment, configs: list[dict], data_fingerprints: list[str], metric: str,
              first_config_id: int = 0) -> list[TrialSpec]:
    """The trials of `configs` (numbered from `first_config_id`): each x repeats x folds, in canonical order.

    `data_fingerprints` has one entry per fold (one for a holdout split): a trial's id hashes the
    fingerprint of the rows it trains and validates on, so every fold is a trial with its own seed.
    `metric` is the validation metric whose best epoch each trial's record reports.
    """
    specs = []
    for config_id, params in enumerate(configs, start=first_config_id):
        train = applicable({**experiment.train, **params}, experiment.train)
        for repeat in range(experiment.search["repeats"]):
            for fold, fingerprint in enumerate(data_fingerprints):
                identity = trial_id(train, repeat, fingerprint)
                specs.append(TrialSpec(identity, config_id, repeat, trial_seed(experiment.seed, identity), params,
                                       train, fold, metric))
    return specs


def trial_specs(experiment: Experiment, data_fingerprints: list[str], metric: str = "accuracy") -> list[TrialSpec]:
    """Every trial of a grid or random search (TPE proposes its configurations as the search goes: none here)."""
    if proposes_candidates(experiment.search):
        return []
    return specs_for(experiment, candidates(experiment), data_fingerprints, metric)
