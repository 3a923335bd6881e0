"""A learner's submission: a `.py` file, a notebook's code cells, or a folder of them, run into one namespace.

Cells run one by one, in order, as "Run All" would, except that a cell that raises does not stop
the rest: the error is kept (with its line) and later cells still define their functions. Notebook
lines that are IPython commands (`%matplotlib inline`, `!pip install ...`) are skipped.
"""

from __future__ import annotations

import json
import linecache
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import DigitlabError
from .feedback import explain_error

SUFFIXES = (".py", ".ipynb")


@dataclass(frozen=True)
class Cell:
    filename: str  # how tracebacks and feedback name it: "mywork.py", "mywork.ipynb cell 4"
    code: str


@dataclass
class Submission:
    """The learner's namespace after running their cells, and what went wrong while running them."""

    namespace: dict[str, Any]
    errors: list[str] = field(default_factory=list)  # one sentence per cell that raised
    files: tuple[str, ...] = ()  # the cells' filenames, to find the learner's lines in tracebacks


MAX_BYTES = 64 * 2**20  # of one file: a notebook full of pictures is a few MB


def read_cells(path: Path, within: Path | None = None) -> list[Cell]:
    """The code of one `.py` or `.ipynb` file, or of every such file in a folder (sorted by name).

    With `within` (a class's folder), a file that is a link to somewhere outside it is refused: a
    student's `work.py -> ~/.ssh/id_rsa` would otherwise be read here, and quoted in the report.
    """
    if within is not None and not path.resolve().is_relative_to(within.resolve()):
        raise DigitlabError(f"{path.name}: a link to a file outside the class's folder; not read")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file() and not _hidden(p, path))
        if not files:
            raise DigitlabError(f"{path}: no .py or .ipynb files in this folder")
        return [cell for f in files for cell in read_cells(f, within)]
    if path.suffix not in SUFFIXES:
        raise DigitlabError(f"{path}: not a .py file or a notebook (.ipynb)")
    try:
        if path.stat().st_size > MAX_BYTES:
            raise DigitlabError(
                f"{path.name}: {path.stat().st_size / 2**20:.0f} MB, over the {MAX_BYTES // 2**20} MB a file may have"
            )
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DigitlabError(f"{path}: cannot read it ({e})") from None
    if path.suffix == ".py":
        return [Cell(path.name, text)]
    return notebook_cells(text, path.name)


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith((".", "__")) for part in path.relative_to(root).parts)


def notebook_cells(text: str, name: str) -> list[Cell]:
    """The code cells of a notebook's JSON, IPython command lines blanked (line numbers stay)."""
    try:
        cells = json.loads(text)["cells"]
    except (ValueError, KeyError, TypeError, RecursionError):  # RecursionError: JSON nested thousands deep
        raise DigitlabError(f"{name}: not a notebook (no JSON with 'cells')") from None
    if not isinstance(cells, list):
        raise DigitlabError(f"{name}: not a notebook ('cells' is not a list)")
    out: list[Cell] = []
    for i, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        code = "".join(source) if isinstance(source, list) else str(source)
        lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in code.splitlines()]
        out.append(Cell(f"{name} cell {i}", "\n".join(lines) + "\n"))
    return out


def run_cells(cells: list[Cell]) -> Submission:
    """Execute the cells in one fresh namespace (as `__main__`-like module globals)."""
    namespace: dict[str, Any] = {"__name__": "submission", "__builtins__": __builtins__}
    submission = Submission(namespace, files=tuple(c.filename for c in cells))
    with torch.set_grad_enabled(torch.is_grad_enabled()):  # a torch.set_grad_enabled(False) in a cell stays there
        _run(cells, submission)
    return submission


def _run(cells: list[Cell], submission: Submission) -> None:
    namespace = submission.namespace
    for cell in cells:
        # Tracebacks and feedback quote the learner's line: linecache finds it under the cell's name.
        linecache.cache[cell.filename] = (len(cell.code), None, cell.code.splitlines(True), cell.filename)
        try:
            exec(compile(cell.code, cell.filename, "exec"), namespace)
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            submission.errors.append(explain_error(e, "your code", submission.files))
