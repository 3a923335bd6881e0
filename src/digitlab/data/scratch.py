"""Temporary folders in the cache that a killed process cannot leave behind for ever.

Extractions and `npm pack` work in a hidden sibling folder named `<prefix><pid>-<random>`, removed
when the work fails and renamed (or emptied) when it succeeds. A `kill -9` skips both, so each
start first removes the folders of its prefix whose process is gone (or that are a day old, for
names without a pid or pids from another machine).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

STALE_AFTER_S = 24 * 3600  # a temporary folder this old is abandoned whoever made it


def make(parent: Path, prefix: str) -> Path:
    """A new empty folder `parent/<prefix><pid>-<random>`."""
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))


def remove_stale(parent: Path, prefix: str) -> list[Path]:
    """Remove `parent/<prefix>*` folders whose process has died (or that are over a day old); return them."""
    removed: list[Path] = []
    try:
        candidates = [p for p in parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return removed  # no such folder yet: nothing to clean
    for path in candidates:
        pid = path.name[len(prefix) :].split("-", 1)[0]
        try:
            old = time.time() - path.lstat().st_mtime > STALE_AFTER_S
        except OSError:
            continue  # removed meanwhile
        if old or (pid.isdigit() and not _alive(int(pid))):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0  # someone else's live process (or a nonsense pid: left to the age rule)
    return True
