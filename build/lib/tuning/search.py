"""Run trial specs on an executor and store each record the moment it arrives; grid and random search.

Successive halving (halving.py) uses the same loop for each of its rungs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .executor import Executor
from .store import ExperimentStore, history_rows, runs_row
from .trial import TrialRecord, TrialSpec
from .trial_data import TrialData

OnTrial = Callable[[TrialRecord, int, int], None]  # (record, trainings done, trainings in all), after storing


@dataclass
class Tally:
    """A search's progress: trainings in all, done (stored before or now), run now, and their fit time."""

    total: int
    on_trial: OnTrial | None = None
    done: int = 0
    run: int = 0
    fit_seconds: float = 0.0
    rungs: int = 0  # successive-halving rungs (0 for grid and random search)

    @property
    def resumed(self) -> int:
        return self.done - self.run

    def count(self, record: TrialRecord) -> None:
        self.done, self.run, self.fit_seconds = self.done + 1, self.run + 1, self.fit_seconds + record.fit_seconds
        if self.on_trial:
            self.on_trial(record, self.done, self.total)


def run_and_store(executor: Executor, specs: list[TrialSpec], data: list[TrialData], store: ExperimentStore,
                  tally: Tally, keep: Callable[[TrialSpec, TrialRecord], None] | None = None) -> None:
    """Run `specs` and append each record to the store as it finishes.

    `keep(spec, record)` runs before the record is stored (halving saves its checkpoint there, so a
    stored rung always has one).
    """
    by_id = {spec.trial_id: spec for spec in specs}
    for record in executor.run(specs, data):
        spec = by_id[record.trial_id]
        if keep is not None:
            keep(spec, record)
        store.append(runs_row(spec, record), history_rows(spec, record))
        tally.count(record)


def search_all(prep, executor: Executor, on_trial: OnTrial | None) -> Tally:
    """Grid or random search: every trial trains its full epochs; those already stored are skipped."""
    specs, columns = prep.specs, prep.columns()
    store = ExperimentStore(prep.folder, columns.runs, columns.history)
    stored = store.open(known={spec.trial_id for spec in specs})
    pending = [spec for spec in specs if spec.trial_id not in stored]
    tally = Tally(len(specs), on_trial, done=len(specs) - len(pending))
    run_and_store(executor, pending, prep.data, store, tally)
    store.sort([spec.trial_id for spec in specs])
    return tally
