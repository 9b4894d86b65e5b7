"""Which hyperparameter matters most: the share of the validation score's variance each searched parameter
explains, by Optuna's fANOVA evaluator over the configurations in runs.csv (any search strategy).

Each configuration with every trial ok is one observation (its mean score, as selection ranks it). A
parameter that some configurations do not use (momentum under Adam) is left out, as fANOVA needs every
parameter in every observation; so is one that never varied.
"""

from __future__ import annotations

import math

import pandas as pd

from .formatting import format_value
from .objective import Objective
from .schema import INTEGER_TRAIN_KEYS
from .select import selectable

MIN_CONFIGS = 4  # fewer configurations than this say nothing about variance
COLUMNS = ["param", "importance"]


def _distribution(key: str, values: pd.Series):
    """An Optuna distribution covering a parameter's values: numbers as a (log) range, the rest as choices."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().all() and values.map(lambda v: not isinstance(v, bool)).all():
        low, high = float(numbers.min()), float(numbers.max())
        log = low > 0 and high / low >= 10
        if f"train.{key}" in INTEGER_TRAIN_KEYS and numbers.eq(numbers.round()).all():
            return IntDistribution(int(low), int(high), log=log), numbers.astype(int).tolist()
        return FloatDistribution(low, high, log=log), numbers.astype(float).tolist()
    text = values.map(format_value)
    return CategoricalDistribution(sorted(set(text))), text.tolist()


def importances(board: pd.DataFrame, params: list[str], objective: Objective) -> pd.DataFrame:
    """param, importance (shares summing to 1), most important first; empty when there is too little to say."""
    if board.empty:
        return pd.DataFrame(columns=COLUMNS)
    healthy = selectable(board)
    usable = [p for p in params if p in healthy and healthy[p].notna().all()
              and healthy[p].map(format_value).nunique() > 1]
    if len(healthy) < MIN_CONFIGS or not usable:
        return pd.DataFrame(columns=COLUMNS)
    if len(usable) == 1:
        return pd.DataFrame({"param": usable, "importance": [1.0]})
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    columns = {p: _distribution(p, healthy[p]) for p in usable}
    trials = [optuna.trial.create_trial(params={p: columns[p][1][i] for p in usable},
                                        distributions={p: columns[p][0] for p in usable}, value=float(score))
              for i, score in enumerate(healthy["mean"])]
    study = optuna.create_study(direction="maximize" if objective.higher_is_better else "minimize")
    study.add_trials(trials)
    shares = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0), normalize=True)
    table = pd.DataFrame({"param": list(shares), "importance": [float(v) for v in shares.values()]})
    return table.sort_values("importance", ascending=False, kind="mergesort", ignore_index=True)


def summary(table: pd.DataFrame, objective: Objective) -> str:
    """'lr explains 61% of the variation in val_accuracy (batch_size 22%, hidden_units 17%)', or ''."""
    if table.empty or not math.isfinite(table["importance"].iloc[0]):
        return ""
    top, rest = table.iloc[0], table.iloc[1:]
    others = ", ".join(f"{r.param} {100 * r.importance:.0f}%" for r in rest.itertuples())
    return (f"{top['param']} explains {100 * top['importance']:.0f}% of the variation in {objective.column} across "
            f"configurations" + (f" ({others})" if others else ""))
