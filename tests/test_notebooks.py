"""Execute every notebook in notebooks/ top to bottom (in a copy: the committed file is never rewritten).

Notebooks are committed with their outputs; regenerate them by executing them in place (notebooks/README.md).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]


def _read(path: Path):
    return nbformat.read(path, as_version=4)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_executes(path: Path, monkeypatch):
    # The kernel inherits the environment: one thread, as everywhere in this suite (2 shared cores).
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")
    nb = copy.deepcopy(_read(path))
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK_DIR)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"
    ]
    assert not errors, f"{path.name}: {errors[0].get('ename')}: {errors[0].get('evalue')}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_committed_shape(path: Path):
    """Each committed notebook has exercises and at least one plot among its saved outputs."""
    nb = _read(path)
    assert any(c.cell_type == "markdown" and "Exercise" in c.source for c in nb.cells), (
        f"{path.name}: no 'Exercise' markdown cell"
    )
    images = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if any(k.startswith("image/") for k in o.get("data", {}))
    ]
    assert images, f"{path.name}: no image output committed (execute it in place to regenerate the outputs)"
