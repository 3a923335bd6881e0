"""Writes that survive a crash: fsync a file's bytes, then the folder that holds its new name.

A rename is atomic, but only an fsync of the folder makes the rename itself durable; the cache,
saved models, run folders and training checkpoints all write a temp file, fsync it, rename it
into place and fsync the folder.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_file(path: Path) -> None:
    """Flush `path`'s bytes to the disk."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def fsync_folder(folder: Path) -> None:
    """Make a rename or creation inside `folder` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a folder; the rename is still atomic
    finally:
        os.close(fd)
