"""Argument checks shared by optimizers, schedules, losses and layers: each error names its owner and argument."""

from __future__ import annotations

import numpy as np


def is_number(value) -> bool:
    """A finite int or float (not a bool)."""
    return (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
            and bool(np.isfinite(value)))


def check_numbers(owner: str, **values) -> None:
    """Raise a ValueError naming the first argument that is not a finite number in range.

    Each value comes as (value, low, low_inclusive, high), high exclusive, or with a fifth
    element True for an inclusive high; high None means unbounded.
    """
    for name, (value, low, low_inclusive, high, *high_inclusive) in values.items():
        closed = bool(high_inclusive and high_inclusive[0])
        ok = is_number(value) and (value >= low if low_inclusive else value > low)
        ok = ok and (high is None or (value <= high if closed else value < high))
        if not ok:
            bound = f"{'>=' if low_inclusive else '>'} {low}"
            if high is not None:
                bound += f" and {'<=' if closed else '<'} {high}"
            raise ValueError(f"{owner}: {name} must be a number {bound}, got {value!r}")


def check_optional_positive(owner: str, **values) -> None:
    """Each value is None (off) or a finite number > 0."""
    for name, value in values.items():
        if value is not None and not (is_number(value) and value > 0):
            raise ValueError(f"{owner}: {name} must be None or a number > 0, got {value!r}")


def check_int(owner: str, name: str, value, minimum: int) -> int:
    """`value` as an int, or a ValueError unless it is an integer >= minimum."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
