"""How values read in tables, titles and the console: one formatter for every output."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def format_value(value) -> str:
    """A parameter value as text, floats to 4 significant digits: 0.05, 1e+06, 0.01235, 32, relu; layer
    widths as 128-64; a setting that did not apply as '—'."""
    if isinstance(value, list | tuple):
        return "-".join(map(str, value))
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "—"
    return f"{value:.4g}" if isinstance(value, float | np.floating) else str(value)


def param_label(values: Mapping, params: list[str]) -> str:
    """'lr=0.1, batch_size=32, hidden_units=128' (or 'default settings' when nothing is searched)."""
    return ", ".join(f"{p}={format_value(values[p])}" for p in params) or "default settings"


def is_number(text: str) -> bool:
    """Whether a CSV cell's text reads as a number (inf and nan included)."""
    try:
        float(text)
    except ValueError:
        return False
    return True
