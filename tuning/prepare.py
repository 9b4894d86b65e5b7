"""Before a run writes anything: check the experiment folder is this experiment's, load and split the data,
scale it, and list every trial.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import Experiment, load_experiment
from .datasets import Splits, fingerprint, load_dataset, split
from .errors import UserError
from .objective import Objective
from .space import trial_specs
from .store import CONFIG_FILE
from .trial import TrialSpec
from .trial_data import TrialData


@dataclass
class Prepared:
    """Everything a run needs that is computed before any file is written."""

    experiment: Experiment
    folder: Path
    splits: Splits
    data: TrialData
    specs: list[TrialSpec]
    params: list[str]  # the searched keys, sorted
    objective: Objective
    replace: bool  # force=True over a different stored config: move the old outputs aside first


def experiment_folder(experiment: Experiment, out: str | Path | None) -> Path:
    """Where the experiment writes: `out`, or results/<name>."""
    return Path(out) if out else Path("results") / experiment.name


def check_folder(folder: Path, experiment: Experiment, force: bool) -> bool:
    """Whether `folder` holds a different experiment (to be replaced); refused without `force`."""
    stored_config = folder / CONFIG_FILE
    if not stored_config.exists():
        return False
    try:
        changed = differences(load_experiment(stored_config).comparable(), experiment.comparable())
    except UserError as exc:
        changed = [f"unreadable {CONFIG_FILE}: {exc}"]
    if changed and not force:
        raise UserError(f"{folder} holds an experiment with a different config ({'; '.join(changed[:3])}); "
                        "use --force to replace it (old results are moved aside) or choose another --out")
    return bool(changed)


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ, as 'key: old -> new'."""
    changes = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict) and key != "space":
            changes += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            changes.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return changes


def prepare(experiment: Experiment, out: str | Path | None = None, force: bool = False) -> Prepared:
    """Check the folder and load the data, writing nothing; raises UserError on bad input."""
    folder = experiment_folder(experiment, out)
    replace = check_folder(folder, experiment, force)
    d = experiment.data
    dataset = load_dataset(d["dataset"], d["target"], d["task"])
    splits = split(dataset, d["test_size"], d["val_size"], experiment.seed)
    data = TrialData.from_splits(splits, d["scale"])
    specs = trial_specs(experiment, fingerprint(data.X_train, data.y_train, data.X_val, data.y_val))
    return Prepared(experiment, folder, splits, data, specs, sorted(experiment.space), Objective.for_task(dataset.task),
                    replace)
