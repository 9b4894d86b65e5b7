"""The exception and warning types of the runner: what the CLI turns into one line each."""

from __future__ import annotations


class UserError(Exception):
    """Bad input (config, data, folder, model file): the CLI prints the message on one line and exits 2."""


class ConfigError(UserError):
    """An experiment's settings are invalid; the message names the key, what was expected and what was given."""


class RunFailed(Exception):
    """The input was valid but the run could not produce a result (every trial failed, the refit diverged).

    The CLI exits 1; what the run stored (runs.csv, history.csv, report.md) stays for the user to read.
    """


class TuningWarning(UserWarning):
    """Something the user should know that does not stop the run (the CLI prints it as one line)."""


class DataNote(TuningWarning):
    """What loading the data noticed: a column dropped, rows left out, a likely leak (the CLI: 'note: ...')."""


def shown(value, limit: int = 60) -> str:
    """`repr(value)` cut to `limit` characters, for error messages that must stay one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line(message) -> str:
    """`message` as one printable line: every unprintable character (a line break of any kind, which
    str.splitlines breaks at, or an escape sequence in a hostile file name) is shown escaped, as repr would."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(message))
