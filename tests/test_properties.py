"""Property-based: whatever config a user (or a damaged disk) hands the CLI, it answers 0 or 2, in at
most one line, never with a traceback, and leaves the experiment folder as it was."""

from __future__ import annotations

import shutil
import string

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import QUICK, file_bytes, main, run_quick
from tuning.schema import DEFAULTS

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Values of every TOML type, hostile ones included: NaN, infinities, huge and negative numbers, odd text.
SCALARS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.text(max_size=12), st.sampled_from(["relu", "adam", "random", "halving", "dask", "iris", "",
                                                          "../x", "tcp://h:1"]),
    st.datetimes().map(lambda d: d.replace(microsecond=0)),
)
# Plausible values too, so that many configs get past the type checks to the deeper ones.
PLAUSIBLE = st.sampled_from([0, 1, 2, 3, 30, 0.1, 1e-3, 0.5, -1, 32, 10**9, "relu", "grid", "tpe", True, [], [0.1, 0.2],
                             [8, 8], [0.1, "a"], {"low": 0.1, "high": 1.0, "log": True}, {"low": 1, "high": 0},
                             {"low": 0, "high": 1e-3, "log": True}, {"value": 0.1}])
VALUES = PLAUSIBLE | st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(string.ascii_lowercase + "_", min_size=1, max_size=8), inner, max_size=3), max_leaves=8)


def _keys(table: dict, prefix: str = "") -> list[str]:
    return [k for key, value in table.items()
            for k in (_keys(value, f"{prefix}{key}.") if isinstance(value, dict) else [f"{prefix}{key}"])]


KNOWN = _keys(DEFAULTS) + ["search.space.lr", "search.space.hidden_units", "search.space.dropout"]
# Mostly real keys (a typo stops validation at the first unknown key, before the values are looked at).
KEYS = st.sampled_from(KNOWN) | st.sampled_from(KNOWN) | st.sampled_from(KNOWN) | st.text(string.ascii_lowercase + "._",
                                                                                         min_size=1, max_size=15)


def _nest(pairs: list[tuple[str, object]]) -> dict:
    """{'train.lr': v} -> {'train': {'lr': v}}; a clash between a value and a table keeps the first."""
    table: dict = {}
    for dotted, value in pairs:
        node, parts = table, [p for p in dotted.split(".") if p]
        if not parts:
            continue
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node.setdefault(parts[-1], value)
    return table


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    folder = tmp_path_factory.mktemp("props") / "exp"
    run_quick(folder, QUICK)
    return folder


def _answers_in_one_line(result) -> None:
    assert result.returncode in (0, 2), (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) <= 1, result.stderr


@SETTINGS
@given(st.lists(st.tuples(KEYS, VALUES), max_size=6))
def test_any_config_table_gets_an_answer_and_leaves_the_folder_alone(finished, tmp_path_factory, pairs):
    path = tmp_path_factory.mktemp("cfg") / "exp.toml"
    path.write_text(tomli_w.dumps(_nest(pairs)))
    before = file_bytes(finished)
    _answers_in_one_line(main("run", "--config", path, "--out", finished, "--quiet"))
    assert file_bytes(finished) == before


@SETTINGS
@given(st.lists(st.tuples(KEYS, st.text(max_size=20)), min_size=1, max_size=3))
def test_any_set_override_gets_an_answer(finished, pairs):
    before = file_bytes(finished)
    _answers_in_one_line(main("run", "--out", finished, "--quiet",
                              *[a for key, raw in pairs for a in ("--set", f"{key}={raw}")]))
    assert file_bytes(finished) == before


@SETTINGS
@given(st.binary(max_size=300) | st.text(max_size=200).map(lambda t: t.encode("utf-16")))
def test_any_bytes_as_a_config_file_get_an_answer(finished, tmp_path_factory, content):
    path = tmp_path_factory.mktemp("bytes") / "exp.toml"
    path.write_bytes(content)
    before = file_bytes(finished)
    _answers_in_one_line(main("run", "--config", path, "--out", finished, "--quiet"))
    assert file_bytes(finished) == before


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_as_a_folders_config_toml_get_an_answer(finished, tmp_path_factory, content):
    folder = tmp_path_factory.mktemp("damaged") / "exp"
    shutil.copytree(finished, folder)
    (folder / "config.toml").write_bytes(content)
    before = file_bytes(folder)
    for command in (["run", "--out", folder, "--quiet", *[a for o in QUICK for a in ("--set", o)]],
                    ["report", folder]):
        result = main(*command)
        _answers_in_one_line(result)
        if result.returncode == 2:
            assert file_bytes(folder) == before
