"""The notebooks run top to bottom at small settings (nbclient, the environment variables of
notebooks/nbdata.py) and are committed without outputs. They use ../shared/data when present
and a builtin corpus otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = ["01_data_exploration", "02_training_pipeline", "03_results_analysis"]


def _read(name: str):
    nbformat = pytest.importorskip("nbformat")
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


@pytest.mark.parametrize("name", NAMES)
def test_committed_without_outputs(name):
    nb = _read(name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "a notebook without code"
    dirty = [i for i, c in enumerate(code) if c.outputs or c.execution_count is not None]
    assert not dirty, f"{name}: code cells {dirty} carry outputs; clear them before committing"


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, corpus", [(NAMES[0], "shared"), (NAMES[1], "builtin"), (NAMES[2], "shared")]
)
def test_notebook_runs_top_to_bottom(name, corpus, tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("matplotlib")
    src = str(Path(__file__).resolve().parents[2] / "src")
    small = {
        "LLMTRAIN_NB_WORK": str(tmp_path),
        "LLMTRAIN_NB_MAX_BYTES": "60000",
        "LLMTRAIN_NB_STEPS": "12",
        "LLMTRAIN_NB_TRIALS": "3",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p),
    }
    if corpus == "builtin":  # as outside this workplace: no ../shared/data
        small["LLMTRAIN_NB_SHARED"] = str(tmp_path / "absent")
    for k, v in small.items():
        monkeypatch.setenv(k, v)
    nb = _read(name)
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert str(tmp_path) in text  # it wrote where it was told
    if corpus == "builtin" or (NOTEBOOKS.parent.parent / "shared" / "data").is_dir():
        assert f"corpus: {'builtin' if corpus == 'builtin' else '../shared/data'}" in text
    figures = [
        o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})
    ]
    assert figures, "no plot was drawn"
