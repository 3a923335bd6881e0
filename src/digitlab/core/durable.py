"""Writes that survive a crash: fsync a file's bytes, then the folder that holds its new name.

A rename is atomic, but only an fsync of the folder makes the rename itself durable; the cache,
saved models, run folders and training checkpoints all write a temp file, fsync it, rename it
into place and fsync the folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


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


_RENAME_EXCHANGE = 2  # linux/fs.h: swap the two names in one step


def exchange(a: Path, b: Path) -> bool:
    """Swap the names `a` and `b` (both must exist) in one atomic step; False where the system cannot.

    Linux's renameat2(RENAME_EXCHANGE): a reader sees either the old pair or the new one, never a
    moment with one name missing, as two renames would show. Other systems and filesystems that
    lack it (EINVAL, ENOSYS) answer False and the caller falls back to two renames.
    """
    import ctypes
    import errno

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> Path:
    """Write safetensors to `path` as a unit: temp file, fsync, rename, fsync the folder.

    A failed write (a full disk, say) removes its temp file, leaves what was at `path` as it was,
    and raises OSError with the system's reason (safetensors' own error wraps it in a sentence).
    """
    import re

    from safetensors import SafetensorError
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + ".tmp")
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)
        tmp.chmod(0o644)  # meant to be shared like any other file
        fsync_file(tmp)
    except SafetensorError as e:  # "Error while serializing: I/O error: No space left on device (os error 28)"
        tmp.unlink(missing_ok=True)
        found = re.search(r"I/O error: (.+?) \(os error (\d+)\)", str(e))
        if found:
            raise OSError(int(found.group(2)), found.group(1), str(path)) from None
        raise OSError(0, str(e), str(path)) from None
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    fsync_folder(path.parent)
    return path
