#!/usr/bin/env python3
"""Strip outputs from the chapter's notebooks so that git holds only what was written.

    .venv/bin/python scripts/strip_notebooks.py            # strip notebooks/*.ipynb in place
    .venv/bin/python scripts/strip_notebooks.py --check    # list the ones that need it, exit 1 if any
    .venv/bin/python scripts/strip_notebooks.py a.ipynb    # only these files

Removed: every code cell's outputs and execution count, Jupyter's per-cell run times and
collapsed/scrolled state, and saved widget state. `make strip-notebooks` runs the first form;
tests/test_notebooks.py runs the check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CELL_METADATA = ("execution", "ExecuteTime", "collapsed", "scrolled")  # written by front ends when cells run
NOTEBOOK_METADATA = ("widgets",)


def strip(nb: nbformat.NotebookNode) -> bool:
    """Strip `nb` in place; True if anything was removed."""
    changed = False
    for cell in nb.cells:
        if cell.cell_type == "code":
            changed |= bool(cell.outputs) or cell.execution_count is not None
            cell.outputs, cell.execution_count = [], None
        for key in CELL_METADATA:
            changed |= cell.metadata.pop(key, None) is not None
    for key in NOTEBOOK_METADATA:
        changed |= nb.metadata.pop(key, None) is not None
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: notebooks/*.ipynb)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook has outputs")
    args = parser.parse_args(argv)
    paths = args.paths or sorted(NOTEBOOKS.glob("*.ipynb"))
    dirty = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if strip(nb):
            dirty.append(path)
            if not args.check:
                nbformat.write(nb, path)
    for path in dirty:
        print(f"{path}: {'has outputs (run: make strip-notebooks)' if args.check else 'stripped'}")
    return 1 if args.check and dirty else 0


if __name__ == "__main__":
    sys.exit(main())
