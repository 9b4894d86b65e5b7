"""Successive halving: all configurations train `min_epochs`, the best 1/eta (by mean validation score)
continue from their saved weights and optimizer state to eta times the epochs, and so on up to `epochs`.

rungs.csv is the journal (one row per trial and rung) that a resume reads; runs.csv holds each
trial's latest rung and is rewritten when the search ends. A checkpoint per trial and rung, written
before its journal row, lets the next rung continue; the folder of checkpoints goes at the end.
"""

from __future__ import annotations

import math
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import RunFailed, TuningWarning
from .executor import TRIAL_BLAS_THREADS, Executor
from .files import atomic_open
from .schema import proposes_candidates
from .search import OnTrial, Tally, run_and_store
from .seeds import derive_seed
from .select import leaderboard
from .space import specs_for
from .store import (
    CHECKPOINTS_DIR,
    RUNGS_FILE,
    RUNS_FILE,
    ExperimentStore,
    write_table,
)
from .tpe import config_scores, propose
from .trial import TrainingState, TrialRecord, TrialSpec, TrialStatus, run_trial


def rung_schedule(min_epochs: int, eta: int, epochs: int) -> list[int]:
    """The epoch count each rung trains up to: min_epochs, min_epochs * eta, ..., then `epochs`."""
    ends, end = [], min_epochs
    while end < epochs:
        ends.append(end)
        end *= eta
    return [*ends, epochs]


def rung_sizes(n_configs: int, eta: int, rungs: int) -> list[int]:
    """Configurations per rung: all, then the best ceil(1/eta) of the rung before (at least one)."""
    sizes = [n_configs]
    for _ in range(rungs - 1):
        sizes.append(max(1, math.ceil(sizes[-1] / eta)))
    return sizes


def checkpoint_path(folder: Path, trial_id: str, rung: int) -> Path:
    return folder / CHECKPOINTS_DIR / f"{trial_id}-rung{rung}.npz"


def save_state(path: Path, state: TrainingState) -> None:
    """A trial's weights and optimizer state after a rung, so the next rung continues from it."""
    arrays = {f"w{i}": w for i, w in enumerate(state.weights)}
    for name, values in state.optimizer.items():
        arrays.update({f"opt_{name}_{i}": a for i, a in enumerate(values)})
    path.parent.mkdir(exist_ok=True)
    with atomic_open(path, "wb") as f:
        np.savez(f, iterations=state.iterations, val_losses=np.asarray(state.val_losses, dtype=float), **arrays)


def load_state(path: Path) -> TrainingState:
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    weights = [arrays[f"w{i}"] for i in range(sum(k.startswith("w") for k in arrays))]
    optimizer: dict[str, list] = {}
    for key in sorted((k for k in arrays if k.startswith("opt_")), key=lambda k: int(k.rsplit("_", 1)[1])):
        optimizer.setdefault(key[4:].rsplit("_", 1)[0], []).append(arrays[key])
    return TrainingState(weights, optimizer, int(arrays["iterations"]), tuple(arrays["val_losses"].tolist()))


def latest_rungs(journal: pd.DataFrame) -> pd.DataFrame:
    """Each trial's row of its latest rung (runs.csv of a halving search), trials in the journal's order."""
    order = journal["trial_id"].drop_duplicates()
    latest = journal.iloc[journal["rung"].astype(int).argsort(kind="mergesort")].drop_duplicates("trial_id",
                                                                                               keep="last")
    return latest.set_index("trial_id").loc[order].reset_index()


def _loaded(folder: Path, trial_id: str, rung: int) -> TrainingState | None:
    """A checkpoint, or None when it is missing or damaged."""
    try:
        return load_state(checkpoint_path(folder, trial_id, rung))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def _state_after(prep, spec: TrialSpec, rung: int, schedule: list[int]) -> TrainingState:
    """The trial's state after `rung`: its checkpoint or, when that is missing or damaged, the same state
    rebuilt by training its segments again from the nearest checkpoint before it (or from scratch), each
    with its own seed, as they ran the first time: the same numbers."""
    state = _loaded(prep.folder, spec.trial_id, rung)
    if state is not None:
        return state
    warnings.warn(f"halving: the checkpoint of trial {spec.trial_id} after rung {rung} is missing or damaged; "
                  "rebuilt by training it again from the one before", TuningWarning, stacklevel=2)
    start = next((r + 1 for r in range(rung - 1, -1, -1)
                  if (state := _loaded(prep.folder, spec.trial_id, r)) is not None), 0)
    for r in range(start, rung + 1):
        segment = spec.segment(r, schedule[r - 1] if r else 0, schedule[r], derive_seed(spec.seed, r), state,
                               keep_state=True)
        record = run_trial(segment, prep.data[spec.fold], TRIAL_BLAS_THREADS)
        if record.state is None:
            raise RunFailed(f"halving: trial {spec.trial_id} could not be trained again to rebuild its lost "
                            f"checkpoint ({record.error}); use force=True to start the search over")
        state = record.state
    save_state(checkpoint_path(prep.folder, spec.trial_id, rung), state)
    return state


def _journal(store: ExperimentStore) -> pd.DataFrame:
    return pd.read_csv(store.runs_path, dtype={"trial_id": str})


def _segments(prep, store: ExperimentStore, rung: int, schedule: list[int], alive, stored: set[str],
              tally: Tally, specs: list[TrialSpec] | None = None) -> list[TrialSpec]:
    """This rung's trainings still to run (of `specs`, default every one): the alive configurations' trials that
    were healthy at the rung before, each continuing from its checkpoint; those in the journal count as done."""
    journal = _journal(store)
    healthy_before = set(journal.loc[(journal["rung"] == rung - 1) & (journal["status"] == TrialStatus.OK),
                                     "trial_id"])
    begin, end, last = schedule[rung - 1] if rung else 0, schedule[rung], rung == len(schedule) - 1
    segments = []
    for spec in prep.specs if specs is None else specs:
        if spec.config_id not in alive or (rung and spec.trial_id not in healthy_before):
            continue
        if f"{spec.trial_id}/{rung}" in stored:
            tally.done += 1
            continue
        state = _state_after(prep, spec, rung - 1, schedule) if rung else None
        segments.append(spec.segment(rung, begin, end, derive_seed(spec.seed, rung), state, keep_state=not last))
    return segments


def _promoted(prep, store: ExperimentStore, rung: int, size: int, alive: list[int]) -> list[int]:
    """The configurations that go on to the next rung: the best `size` of this rung's journal rows."""
    journal = _journal(store)
    this_rung = journal[journal["rung"] == rung]
    if not len(this_rung):
        return alive
    return leaderboard(this_rung, prep.params, prep.objective)["config_id"].head(size).tolist()


def search_halving(prep, executor: Executor, on_trial: OnTrial | None) -> Tally:
    """Run every rung (resuming from the journal), then write runs.csv from each trial's latest rung.

    With sampler = "tpe", TPE proposes the first rung's configurations, a batch at a time, told their
    first-rung scores; the rungs after it promote as always.
    """
    experiment, folder = prep.experiment, prep.folder
    search, proposing = experiment.search, proposes_candidates(experiment.search)
    schedule = rung_schedule(search["min_epochs"], search["eta"], experiment.train["epochs"])
    sizes = rung_sizes(search["n_trials"] if proposing else len({s.config_id for s in prep.specs}), search["eta"],
                       len(schedule))
    columns = prep.columns(halving=True)
    store = ExperimentStore(folder, columns.runs, columns.history, journal=RUNGS_FILE,
                            key=("trial_id", "rung"))
    stored = store.open(known=None if proposing else {f"{spec.trial_id}/{rung}" for spec in prep.specs
                                                      for rung in range(len(schedule))})
    tally = Tally(sum(sizes) * search["repeats"] * len(prep.data), on_trial, rungs=len(schedule))

    def keep(spec: TrialSpec, record: TrialRecord) -> None:
        if record.state is not None:
            save_state(checkpoint_path(folder, spec.trial_id, spec.rung), record.state)

    def first_rung(configs: list[dict], first: int) -> dict[int, float | None]:
        specs = specs_for(experiment, configs, prep.fingerprints, prep.objective.metric, first)
        prep.specs.extend(specs)
        ids = range(first, first + len(configs))
        run_and_store(executor, _segments(prep, store, 0, schedule, ids, stored, tally, specs), prep.data, store,
                      tally, keep)
        return config_scores(store, list(ids), prep.objective.column, rung=0)

    if proposing:
        propose(prep, first_rung)
    alive = sorted({spec.config_id for spec in prep.specs})
    for rung in range(len(schedule)):
        if rung or not proposing:
            run_and_store(executor, _segments(prep, store, rung, schedule, alive, stored, tally), prep.data, store,
                          tally, keep)
        if rung < len(schedule) - 1:
            alive = _promoted(prep, store, rung, sizes[rung + 1], alive)
    store.sort([f"{spec.trial_id}/{rung}" for rung in range(len(schedule)) for spec in prep.specs])
    # runs.csv: each trial's latest rung, its text copied from the journal as it is (sorted: in spec order).
    journal = pd.read_csv(store.runs_path, dtype=str, keep_default_na=False)
    write_table(folder / RUNS_FILE, columns.runs, latest_rungs(journal).to_dict("records"))
    shutil.rmtree(folder / CHECKPOINTS_DIR, ignore_errors=True)  # the final model is refit from scratch
    return tally
