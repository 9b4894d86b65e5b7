"""examples/quickstart.ipynb runs from top to bottom, through the Python API, on every CI run."""

from __future__ import annotations

import shutil

import pytest

from tests.helpers import ROOT

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")


@pytest.mark.slow
def test_the_quickstart_notebook_runs(tmp_path, monkeypatch):
    (tmp_path / "examples").mkdir()
    shutil.copy(ROOT / "examples" / "quickstart.ipynb", tmp_path / "examples")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the kernel imports this checkout's tuning
    notebook = nbformat.read(tmp_path / "examples" / "quickstart.ipynb", as_version=4)
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path / "examples")}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3  # two of the runner's figures, one of pandas'
    assert (tmp_path / "results" / "quickstart" / "model.npz").is_file()
