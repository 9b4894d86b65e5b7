"""Write `schedule_reference.json`: torch.optim.lr_scheduler trajectories the framework's schedules must reproduce.

Usage (needs torch): `python tests/framework/make_schedule_reference.py`

Each case names framework schedules (class and keyword arguments; LinearWarmup's `then` nested
the same way), a base lr, a number of epochs and, for ReduceLROnPlateau, the monitored value of
every epoch. torch runs the equivalent schedulers on an SGD optimizer, stepped once after every
epoch in the listed order (`step(value)` for ReduceLROnPlateau), and the lr of every epoch is
stored: JSON keeps Python floats exactly, so the test can ask for equality.
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).with_name("schedule_reference.json")
DECREASING = [1.0, 0.8, 0.7, 0.69, 0.695, 0.6899, 0.7, 0.5, 0.52, 0.51, 0.505, 0.5049, 0.6, 0.55, 0.56, 0.57]
RISING = [0.2, 0.4, 0.41, 0.405, 0.41, 0.6, 0.6, 0.6, 0.59, 0.61, 0.6, 0.6, 0.6, 0.6]


def schedule(cls: str, **kwargs) -> dict:
    return {"class": cls, "kwargs": kwargs}


CASES = [
    {"name": "step", "base_lr": 0.1, "epochs": 12, "schedules": [schedule("StepLR", step_size=3, gamma=0.5)]},
    {"name": "step_default_gamma", "base_lr": 0.05, "epochs": 9, "schedules": [schedule("StepLR", step_size=2)]},
    {"name": "exponential", "base_lr": 0.1, "epochs": 20, "schedules": [schedule("ExponentialLR", gamma=0.9)]},
    {"name": "cosine", "base_lr": 0.1, "epochs": 10, "schedules": [schedule("CosineAnnealingLR", T_max=10)]},
    {"name": "cosine_past_t_max", "base_lr": 0.05, "epochs": 25,
     "schedules": [schedule("CosineAnnealingLR", T_max=7, eta_min=1e-3)]},
    {"name": "warmup", "base_lr": 0.1, "epochs": 8, "schedules": [schedule("LinearWarmup", warmup_epochs=4)]},
    {"name": "warmup_start_factor", "base_lr": 0.3, "epochs": 8,
     "schedules": [schedule("LinearWarmup", warmup_epochs=5, start_factor=0.1)]},
    {"name": "warmup_cosine", "base_lr": 0.1, "epochs": 15,
     "schedules": [schedule("LinearWarmup", warmup_epochs=3, start_factor=0.25,
                            then=schedule("CosineAnnealingLR", T_max=12, eta_min=1e-4))]},
    {"name": "warmup_step", "base_lr": 0.2, "epochs": 12,
     "schedules": [schedule("LinearWarmup", warmup_epochs=2, then=schedule("StepLR", step_size=3, gamma=0.5))]},
    {"name": "warmup_exponential", "base_lr": 0.01, "epochs": 10,
     "schedules": [schedule("LinearWarmup", warmup_epochs=1, start_factor=0.5,
                            then=schedule("ExponentialLR", gamma=0.8))]},
    {"name": "plateau_min", "base_lr": 0.1, "epochs": len(DECREASING), "monitor": "val_loss", "values": DECREASING,
     "schedules": [schedule("ReduceLROnPlateau", monitor="val_loss", factor=0.5, patience=1, threshold=0.01,
                            min_lr=0.02, cooldown=1)]},
    {"name": "plateau_defaults", "base_lr": 0.1, "epochs": len(DECREASING), "monitor": "val_loss",
     "values": DECREASING, "schedules": [schedule("ReduceLROnPlateau", patience=2)]},
    {"name": "plateau_max_auto", "base_lr": 0.05, "epochs": len(RISING), "monitor": "val_accuracy", "values": RISING,
     "schedules": [schedule("ReduceLROnPlateau", monitor="val_accuracy", factor=0.2, patience=2)]},
    {"name": "step_then_plateau", "base_lr": 0.1, "epochs": len(DECREASING), "monitor": "val_loss",
     "values": DECREASING, "schedules": [schedule("StepLR", step_size=5, gamma=0.5),
                                         schedule("ReduceLROnPlateau", factor=0.5, patience=1)]},
]


def torch_scheduler(spec: dict, optimizer, monitor: str | None):
    """The torch scheduler a framework schedule spec stands for."""
    from torch.optim import lr_scheduler as s

    cls, kw = spec["class"], dict(spec["kwargs"])
    if cls == "LinearWarmup":
        warmup, start = kw["warmup_epochs"], kw.get("start_factor", 1 / 3)
        linear = s.LinearLR(optimizer, start_factor=start, end_factor=1.0, total_iters=warmup)
        if kw.get("then") is None:
            return linear
        return s.SequentialLR(optimizer, [linear, torch_scheduler(kw["then"], optimizer, monitor)], milestones=[warmup])
    if cls == "ReduceLROnPlateau":
        mode = "max" if kw.pop("monitor", "val_loss") == "val_accuracy" else "min"
        return s.ReduceLROnPlateau(optimizer, mode=mode, threshold_mode="rel", **kw)
    return getattr(s, cls)(optimizer, **kw)


def torch_lrs(case: dict) -> list[float]:
    """The lr of every epoch when torch's schedulers step after each one."""
    import torch

    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=case["base_lr"])
    schedulers = [torch_scheduler(spec, optimizer, case.get("monitor")) for spec in case["schedules"]]
    lrs = []
    for epoch in range(case["epochs"]):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradient: changes nothing, but torch wants a step before the scheduler's
        for scheduler in schedulers:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(case["values"][epoch])
            else:
                scheduler.step()
    return [float(lr) for lr in lrs]


def main() -> None:
    import torch

    cases = [{**case, "lr": torch_lrs(case)} for case in CASES]
    header = {"about": "torch.optim.lr_scheduler lr per epoch; written by make_schedule_reference.py",
              "torch_version": torch.__version__}
    lines = [json.dumps(header)[:-1] + ', "cases": [']
    lines += [" " + json.dumps(case) + ("," if i < len(cases) - 1 else "") for i, case in enumerate(cases)]
    lines.append("]}")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(cases)} cases)")


if __name__ == "__main__":
    main()
