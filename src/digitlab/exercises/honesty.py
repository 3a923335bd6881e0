"""Telling the learner's own work from digitlab's: an exercise answered with digitlab's code is not passed.

Two looks, one from each side of the sandbox:

- `digitlab_solutions(cells, names)`, in the checker's process, reads the source (nothing runs): the
  name is imported from digitlab (`from digitlab.baseline import mnist_distance`, or a star import of
  a digitlab module that exports it) and the learner's code never defines it.
- `calls_digitlab(name, files)`, in the child, watches a check: digitlab's own `name` called from the
  learner's code (a wrapper around it: `def mnist_distance(a, b): return digitlab.mnist_distance(a, b)`).
  The child runs the learner's code, so this one holds only while that code leaves the checker alone;
  a submission that also disables it still has to compute right answers on fresh inputs (probes.py).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import CodeType, FrameType
from typing import Any

from .source import Cell


def digitlab_solutions(cells: list[Cell], names: list[str]) -> dict[str, str]:
    """{name: how the source takes it from digitlab ("from digitlab.baseline import mnist_distance")}, for
    each of `names` that the source imports from digitlab and never defines itself."""
    defined: set[str] = set()
    imported: dict[str, str] = {}
    for cell in cells:
        try:
            tree = ast.parse(cell.code)
        except (SyntaxError, ValueError):  # the child reports it; a cell that cannot parse defines nothing
            continue
        for node in ast.walk(tree):
            defined |= _defined(node)
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "digitlab":
                for alias in node.names:
                    given = names if alias.name == "*" else [alias.asname or alias.name]
                    for name in given:
                        if name in names and (alias.name != "*" or _exports(node.module, name)):
                            imported.setdefault(name, f"from {node.module} import {alias.name}")
    return {name: how for name, how in imported.items() if name not in defined}


def _defined(node: ast.AST) -> set[str]:
    """The name `node` binds with the learner's own code (def, class, assignment, loop variable), if any."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        return {node.id}
    return set()


def _exports(module: str | None, name: str) -> bool:
    """Whether `from <a digitlab module> import *` may give `name`: digitlab exports it. Nothing is
    imported here: the module's name is the submission's text (`digitlab.__main__` would run the CLI)."""
    import digitlab

    return name in getattr(digitlab, "__all__", ())


def own_codes(name: str) -> frozenset[CodeType]:
    """The code of digitlab's own `name` (a function's, or every method's of a class); empty when it has none."""
    import digitlab

    obj: Any = getattr(digitlab, name, None)
    if isinstance(obj, type):
        functions = [getattr(v, "__func__", v) for v in vars(obj).values()]
    else:
        functions = [obj]
    return frozenset(f.__code__ for f in functions if hasattr(f, "__code__"))


@contextmanager
def calls_digitlab(name: str, files: tuple[str, ...]) -> Iterator[list[str]]:
    """Yields a list that gets an entry when digitlab's own `name` runs called from the learner's code."""
    codes, seen = own_codes(name), list[str]()
    if not codes:
        yield seen
        return

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code in codes and not seen and _from_learner(frame, files):
            seen.append(f"{frame.f_globals.get('__name__', 'digitlab')}.{frame.f_code.co_name}")

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield seen
    finally:
        sys.setprofile(previous)


def _from_learner(frame: FrameType, files: tuple[str, ...]) -> bool:
    caller = frame.f_back
    while caller is not None:
        if caller.f_code.co_filename in files:
            return True
        caller = caller.f_back
    return False
