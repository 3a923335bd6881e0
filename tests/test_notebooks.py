"""The chapter's notebooks run top to bottom in a real Jupyter kernel, and git holds them without outputs.

Each notebook is executed by nbclient in an ipykernel running this interpreter (the venv's
python, through a kernelspec written to a private JUPYTER_PATH folder, so no user or system
kernel named "python3" can stand in for it), with notebooks/ as the working directory, the
session's isolated cache (the offline mirror is fetched once for the whole test session) and
DIGITLAB_OFFLINE=1. A cell that raises fails the test; the notebooks' own "check" cells assert
their accuracies within bands. DIGITLAB_TEST_SET points at the official MNIST test set when
../shared/data/mnist-test exists (workspace and CI), so the bands are then the book's.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the four notebooks in a Jupyter kernel

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
TEST_SET = ROOT / ".." / "shared" / "data" / "mnist-test"
KERNEL = "digitlab-tests"
CELL_TIMEOUT = 300  # seconds for any one cell; the slowest (a CNN on 10,000 digits) takes about 30


def _strip_module():
    spec = importlib.util.spec_from_file_location("strip_notebooks", ROOT / "scripts" / "strip_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def jupyter_path(tmp_path_factory) -> Path:
    """A folder holding one kernelspec, KERNEL, that starts an ipykernel on sys.executable."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "digitlab tests", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    return root


def test_the_chapter_has_its_four_notebooks():
    assert [p.name for p in NOTEBOOKS] == [
        "01_pixels_and_the_baseline.ipynb",
        "02_sgd_from_scratch.ipynb",
        "03_deeper_networks.ipynb",
        "04_your_handwriting.ipynb",
    ]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stripped(notebook):
    """No outputs or execution counts in git: `make strip-notebooks` fixes a notebook that has them."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    nbformat.validate(nb)
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, f"{notebook.name}: cells {dirty} have outputs or execution counts; run `make strip-notebooks`"
    assert not _strip_module().strip(nb), f"{notebook.name}: run metadata left in; run `make strip-notebooks`"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(notebook, jupyter_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_path))
    monkeypatch.setenv("DIGITLAB_OFFLINE", "1")
    if TEST_SET.is_dir():
        monkeypatch.setenv("DIGITLAB_TEST_SET", str(TEST_SET.resolve()))
    else:
        monkeypatch.delenv("DIGITLAB_TEST_SET", raising=False)
    nb = nbformat.read(notebook, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert any("assert " in cell.source for cell in code), f"{notebook.name} has no check cell"
    before = sorted(p.name for p in NOTEBOOK_DIR.iterdir())

    started = time.monotonic()
    # raises CellExecutionError (the cell's source and traceback) if any cell raises, or a check fails
    NotebookClient(
        nb, kernel_name=KERNEL, timeout=CELL_TIMEOUT, resources={"metadata": {"path": str(NOTEBOOK_DIR)}}
    ).execute()
    seconds = time.monotonic() - started

    checks = [
        out["text"].strip()
        for cell in code
        if "assert " in cell.source
        for out in cell.outputs
        if out.get("output_type") == "stream" and out.get("name") == "stdout"
    ]
    print(f"{notebook.name}: {seconds:.1f} s; " + " | ".join(checks))
    assert sorted(p.name for p in NOTEBOOK_DIR.iterdir()) == before, "a notebook wrote files into notebooks/"

    # In Jupyter, figures show inline and a Learner shows its epoch table (one HTML display per fit).
    outputs = [out for cell in code for out in cell.outputs]
    figures = [out for out in outputs if "image/png" in out.get("data", {})]
    assert figures, f"{notebook.name}: no figure was shown inline"
    fits = sum(cell.source.count("learn.fit(") for cell in code)
    tables = [out for out in outputs if "digitlab-progress" in out.get("data", {}).get("text/html", "")]
    assert len(tables) >= fits, f"{notebook.name}: {fits} learn.fit calls but {len(tables)} epoch tables shown"
    assert not [out for out in outputs if "Learner(" in out.get("data", {}).get("text/plain", "")]
