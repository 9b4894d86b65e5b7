"""Model-based search: Optuna's Tree-structured Parzen Estimator proposes configurations, `batch` at a time.

Optuna is the sampling engine only, in memory: runs.csv stays the one record. A batch is proposed,
its trials run (in parallel, in any order) and are stored, and only then is each configuration's
score told back, in configuration order, so the proposals depend on the results alone, never on
n_jobs or on which trial finished first. A resume replays the same proposals, finds their trials
stored and tells their stored scores: it continues exactly as an uninterrupted run would have.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pandas as pd

from .errors import ConfigError
from .executor import Executor
from .schema import CONDITIONS, INTEGER_TRAIN_KEYS
from .search import OnTrial, Tally, run_and_store
from .seeds import TPE_SAMPLER, derive_seed
from .space import applicable, specs_for
from .store import ExperimentStore
from .trial import TrialStatus

PARENTS = ("optimizer", "schedule", "hidden")  # settings others' conditions depend on: proposed first
# Optuna's TPE draws its first 10 configurations at random. Proposals only learn between batches, so
# that many rounded up to whole batches (16 of 27 at batch 8) would waste a budget on chance; rounded
# down (8), 27 trials found the best of the 81-configuration digits grid on 10 of 10 seeds, against 5 of
# 10 after 16 random ones (benchmarks/bench_tpe.py, seeds 0-9).
OPTUNA_STARTUP = 10
MAX_REPEATS = 100  # proposals of an already-tried configuration in a row before the space counts as used up

RunBatch = Callable[[list[dict], int], dict[int, float | None]]  # (configs, first config id) -> scores


def _encode(value):
    """A value as Optuna's categorical choices allow (None, bool, int, float, str): lists as JSON text."""
    return json.dumps(value) if isinstance(value, list | dict) else value


def _suggest(trial, space: dict, defaults: dict) -> dict:
    """One configuration from an Optuna trial, define-by-run: a setting that does not apply (CONDITIONS,
    given the ones proposed before it) is not proposed, and is None, as in a grid."""
    order = [k for k in PARENTS if k in space] + sorted(k for k in space if k not in PARENTS)
    params: dict = {}
    for key in order:
        if key in CONDITIONS and not CONDITIONS[key]({**defaults, **params}):
            params[key] = None
            continue
        values = space[key]
        if isinstance(values, list):
            choices = {_encode(v): v for v in values}
            params[key] = choices[trial.suggest_categorical(key, list(choices))]
        elif f"train.{key}" in INTEGER_TRAIN_KEYS:
            params[key] = trial.suggest_int(key, values["low"], values["high"], log=values.get("log", False))
        else:
            params[key] = trial.suggest_float(key, values["low"], values["high"], log=values.get("log", False))
    return applicable(dict(sorted(params.items())), defaults)


def random_trials(batch: int) -> int:
    """Configurations drawn at random before TPE models: whole batches up to Optuna's 10, at least one."""
    return batch * max(1, OPTUNA_STARTUP // batch)


def propose(prep, run_batch: RunBatch) -> None:
    """Ask TPE for the experiment's n_trials distinct configurations, a batch at a time; `run_batch` runs a
    batch and returns each configuration's score (None: failed), which is told back in order."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    experiment = prep.experiment
    batch = experiment.search["batch"]
    sampler = optuna.samplers.TPESampler(n_startup_trials=random_trials(batch),
                                         seed=derive_seed(experiment.seed, TPE_SAMPLER))
    study = optuna.create_study(direction="maximize" if prep.objective.higher_is_better else "minimize",
                                sampler=sampler)
    n, scores = experiment.search["n_trials"], {}
    configs: list[str] = []  # each configuration's key, in order
    while len(configs) < n:
        asked, repeats = [], 0  # (optuna trial, config key) of this batch
        while len(configs) < n and len({k for _, k in asked if k not in scores}) < batch:
            trial = study.ask()
            params = _suggest(trial, experiment.space, experiment.train)
            key = json.dumps(params, sort_keys=True)
            if key in scores or key in configs:  # already tried: no new trial, its score is told once known
                repeats += 1
                if repeats > MAX_REPEATS:
                    raise ConfigError(f"config: TPE proposed only {len(configs)} distinct configurations of the "
                                      f"{n} asked for (search.n_trials): the space is used up; lower n_trials")
            else:
                configs.append(key)
                repeats = 0
            asked.append((trial, key))
        new = [k for k in dict.fromkeys(k for _, k in asked) if k not in scores]
        first = len(configs) - len(new)
        got = run_batch([json.loads(k) for k in new], first)
        scores.update({k: got[first + i] for i, k in enumerate(new)})
        for trial, key in asked:  # in the order asked: the sampler's next batch depends on nothing else
            if scores[key] is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, scores[key])


def config_scores(store: ExperimentStore, config_ids: list[int], column: str,
                  rung: int | None = None) -> dict[int, float | None]:
    """Each configuration's mean score over its stored trials (at `rung` of a halving journal), None when
    one failed or diverged."""
    runs = pd.read_csv(store.runs_path)
    runs = runs if rung is None else runs[runs["rung"] == rung]
    scores = {}
    for config_id in config_ids:
        rows = runs[runs["config_id"] == config_id]
        healthy = len(rows) and (rows["status"] == TrialStatus.OK).all()
        scores[config_id] = float(rows[column].mean()) if healthy else None
    return scores


def search_tpe(prep, executor: Executor, on_trial: OnTrial | None) -> Tally:
    """TPE search: n_trials configurations x repeats x folds, proposed a batch at a time."""
    columns = prep.columns()
    store = ExperimentStore(prep.folder, columns.runs, columns.history)
    stored = store.open()
    per_config = prep.experiment.search["repeats"] * len(prep.data)
    tally = Tally(prep.experiment.search["n_trials"] * per_config, on_trial)

    def run_batch(configs: list[dict], first: int) -> dict[int, float | None]:
        specs = specs_for(prep.experiment, configs, prep.fingerprints, prep.objective.metric, first)
        prep.specs.extend(specs)
        pending = [spec for spec in specs if spec.trial_id not in stored]
        tally.done += len(specs) - len(pending)
        run_and_store(executor, pending, prep.data, store, tally)
        return config_scores(store, list(range(first, first + len(configs))), prep.objective.column)

    propose(prep, run_batch)
    store.sort([spec.trial_id for spec in prep.specs])
    return tally
