"""README.md says what the code does: its Python snippets run, its experiment file is the defaults."""

from __future__ import annotations

import re

import pytest

from tests.helpers import ROOT

BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.slow
def test_the_readme_python_snippets_run(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")  # the snippets may draw; no screen here
    assert len(BLOCKS) >= 3
    monkeypatch.chdir(tmp_path)  # results/ is written here, as in a reader's project folder
    namespace: dict = {}
    for i, block in enumerate(BLOCKS):
        try:
            exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)
        except Exception as exc:  # name the block that broke
            raise AssertionError(f"README.md python block {i + 1} fails: {type(exc).__name__}: {exc}") from exc


def test_the_readme_experiment_file_is_the_defaults_key_for_key():
    """The annotated experiment file in the README lists every setting with its real default."""
    import tomllib

    from tuning.schema import DEFAULTS

    (documented,) = [block for block in re.findall(r"```toml\n(.*?)```", (ROOT / "README.md").read_text(
        encoding="utf-8"), flags=re.S) if block.startswith("name = ")]
    assert tomllib.loads(documented) == DEFAULTS
