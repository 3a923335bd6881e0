"""fastcore's additions to `pathlib.Path` that the book's cells use: `path.ls()` and `Path.BASE_PATH`.

    Path.BASE_PATH = path
    path.ls()                     # (#3) [Path('labels.csv'),Path('train'),Path('valid')]
    (path/'train'/'3').ls().sorted()

`add_to_path()` puts them on `Path`; only `from digitlab.all import *` calls it (the book's one line),
never `import digitlab`: a library does not change a standard class behind its user's back.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .lists import L


def ls(self: Path, n_max: int | None = None, file_type: str | None = None, file_exts: Any = None) -> L:
    """The folder's entries as an `L` of paths (in the file system's order, as fastcore's; `.sorted()`).

    n_max: at most this many; file_type: e.g. "image" keeps names whose MIME type starts with it;
    file_exts: a suffix or several (".png")."""
    import mimetypes

    names = os.listdir(self)
    if file_exts is not None:
        exts = {file_exts} if isinstance(file_exts, str) else set(file_exts)
        names = [n for n in names if Path(n).suffix in exts]
    if file_type is not None:
        names = [n for n in names if (mimetypes.guess_type(n)[0] or "").startswith(file_type)]
    if n_max is not None:
        names = names[:n_max]
    return L(self / n for n in names)


def _repr(self: Path) -> str:
    """`Path('train/3')` for a path under `Path.BASE_PATH` (fastcore's short form), else the full path."""
    base = getattr(Path, "BASE_PATH", None)
    if base is not None:
        try:
            return f"Path({self.relative_to(base).as_posix()!r})"
        except ValueError:
            pass
    return f"Path({self.as_posix()!r})"


def add_to_path() -> None:
    """Give `pathlib.Path` fastcore's `ls` and `BASE_PATH` (None until the book sets it)."""
    Path.ls = ls  # type: ignore[attr-defined]
    if not hasattr(Path, "BASE_PATH"):
        Path.BASE_PATH = None  # type: ignore[attr-defined]
    Path.__repr__ = _repr  # type: ignore[method-assign,assignment]
