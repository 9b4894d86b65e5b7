"""Progress of a search as a user watches it: trials done, time left, and the best configuration so far.

"Best so far" is what selection will use: the mean score of a configuration whose trials (repeats x
folds) are all stored and ok, so the number shown never drops at the end (under successive halving,
of the configurations complete at the latest rung reached, since rungs train for different lengths).
"""

from __future__ import annotations

from collections import defaultdict

from .objective import Objective
from .trial import TrialRecord


class BestSoFar:
    """The best mean score among configurations whose every trial has come back ok."""

    def __init__(self, objective: Objective, trials_of: dict[str, tuple[int, int]], per_config: int) -> None:
        self.objective, self.trials_of, self.per_config = objective, trials_of, per_config
        self.scores: dict[tuple[int, int], list[float | None]] = defaultdict(list)  # (rung, config) -> scores
        self.best: float | None = None
        self._rung = -1

    def add(self, record: TrialRecord) -> None:
        rung = record.rung or 0
        config = self.trials_of.get(record.trial_id, (None, 0))[0]
        value = record.metrics.get(self.objective.column) if record.ok else None
        scores = self.scores[(rung, config)]
        scores.append(value)
        if len(scores) < self.per_config or None in scores or rung < self._rung:
            return
        mean = sum(scores) / len(scores)
        if rung > self._rung:  # a later rung trained longer: its scores do not compare with earlier ones
            self._rung, self.best = rung, mean
        else:
            self.best = mean if self.best is None else self.objective.best([self.best, mean])


def progress_bar(total: int, enabled: bool):
    """A tqdm bar of trials: a widget in Jupyter when ipywidgets is there, a text bar on stderr otherwise;
    None when not `enabled`."""
    if not enabled:
        return None
    try:
        import ipywidgets  # noqa: F401  (tqdm's notebook widget needs it; without it, a text bar)
        from tqdm.auto import tqdm
    except ImportError:
        from tqdm import tqdm
    return tqdm(total=total, unit="trial", dynamic_ncols=True)


class Progress:
    """The bar and the best-so-far of one run, updated after each stored trial (`on_trial`)."""

    def __init__(self, prep, enabled: bool) -> None:
        trials_of = {spec.trial_id: (spec.config_id, spec.repeat) for spec in prep.specs}
        per_config = prep.experiment.search["repeats"] * len(prep.data)
        self.best = BestSoFar(prep.objective, trials_of, per_config)
        self.bar = progress_bar(len(prep.specs), enabled)
        self.column = prep.objective.column

    def on_trial(self, record: TrialRecord, done: int, total: int) -> None:
        self.best.add(record)
        if self.bar is not None:
            self.bar.total, self.bar.n = total, done
            postfix = {f"best {self.column}": f"{self.best.best:.4f}"} if self.best.best is not None else {}
            self.bar.set_postfix(postfix, refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
