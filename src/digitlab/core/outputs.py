"""Where a command may write: never over a user's file or input, never into a folder of other files.

Every file or folder a command writes (`--out`, `--show`, `--png`, `--figures`, reports) goes through
these checks first, so a mistyped path costs a one-line error (DigitlabError), never a user's data:
- `check_new_file`: a file is written only where nothing is, or over a file when the user said
  `--overwrite`, never over one of the command's own inputs (`predict PHOTO --show PHOTO`), and
  only into a folder that exists;
- `check_owned_folder`: a folder is written into only when it is new, empty, or holds nothing but
  what the same command writes (so running it again refreshes its own output);
- `make_folder`: creates a folder, its failures (a file on the way, no permission, a full disk,
  `/proc`) said in one line.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable
from pathlib import Path

from ..errors import DigitlabError


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_new_file(path: Path, flag: str, overwrite: bool = False, inputs: Iterable[Path] = ()) -> None:
    """Refuse to write `path` over an input of the command, a folder, or (without `overwrite`) any file."""
    for given in inputs:
        if _same_file(path, given):
            raise DigitlabError(f"{flag} {path} is one of this command's inputs: choose another file to write")
    if path.is_dir():
        raise DigitlabError(f"{flag} {path} is a folder: give a file name (e.g. {path / 'figure.png'})")
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise DigitlabError(f"{flag} {path} already exists: choose another name, or add --overwrite to replace it")
    folder = path.parent
    if not folder.is_dir():  # a typo in a folder's name is not a reason to create folders
        what = "is not a folder" if folder.exists() else "does not exist"
        raise DigitlabError(f"{flag} {path}: its folder {folder} {what}")


def check_owned_folder(
    folder: Path,
    flag: str,
    owned: Collection[str],
    writer: str = "this command",
    advice: str = "choose a new or empty folder",
) -> None:
    """Refuse a `folder` to write into that holds anything but the names in `owned` (what `writer`
    writes there), or that is a file; the error ends with `advice`."""
    if folder.exists() and not folder.is_dir():
        raise DigitlabError(f"{flag} {folder} is a file, not a folder: choose a new folder")
    foreign = foreign_names(folder, owned)
    if foreign:
        raise DigitlabError(f"{flag} {folder} holds files {writer} did not write ({some_names(foreign)}): {advice}")


def foreign_names(folder: Path, owned: Collection[str]) -> list[str]:
    """The names in `folder` that are not in `owned`, sorted; [] for a folder that is missing."""
    if not folder.is_dir():
        return []
    return sorted(entry.name for entry in folder.iterdir() if entry.name not in owned)


def some_names(names: list[str], shown: int = 3) -> str:
    """'a, b, c and 4 more': the first names of a list, for a one-line error."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def make_folder(folder: Path, flag: str) -> None:
    """`mkdir -p folder`, or a one-line error naming what is in the way."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
        why = f"{blocker} is a file, not a folder" if blocker is not None else e.strerror or str(e)
        raise DigitlabError(f"{flag}: cannot create the folder {folder} ({why})") from None
