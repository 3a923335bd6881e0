"""Decoded datasets cached as one `.npz` file keyed by the source's content hash.

Decoding MNIST_SAMPLE's ~14k PNGs takes seconds; loading one uncompressed npz of uint8
arrays takes milliseconds. The key is a sha256 of the source's bytes (archives, downloads) or
of its files' names, sizes and modification times (folders), so an edited source gets a new
entry and a stale one is never served. Loading never unpickles.

Every entry records the sha256 of its own arrays and metadata, checked on every load: an
entry that is empty, unreadable or altered (say, labels swapped in a still-valid npz) is named
in one line, deleted and rebuilt, never served. Writes go to a temporary file that is fsynced,
renamed into place, and then the folder is fsynced, so a crash leaves the old entry or the new
one, never a 0-byte one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.durable import fsync_folder
from ..core.progress import Log, stderr_log

if TYPE_CHECKING:  # numpy and torch load where an entry is read or written: `data list` needs neither
    import numpy as np

    from .digits import DigitDataset, Digits

FORMAT = 2  # bump when the layout below changes; old entries are then ignored (2: content sha256)
_STALE_TMP_S = 3600  # a temporary file this old belongs to a writer that died: removed by the next store


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_fingerprint(root: Path) -> str:
    """sha256 of every file's relative path, size and modification time, and every folder's path, under root.

    A folder's key: reading the bytes of ~14k PNGs costs about a second, their stat() a tenth
    of that, and any edit, addition, removal or rename of a file or folder changes the key.
    """
    digest = hashlib.sha256()
    stack = [root]
    entries: list[tuple[str, int, int]] = []
    while stack:
        with os.scandir(stack.pop()) as listing:
            for entry in listing:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                    entries.append((os.path.relpath(entry.path, root) + os.sep, -1, 0))  # an empty folder counts
                else:
                    info = entry.stat()
                    entries.append((os.path.relpath(entry.path, root), info.st_size, info.st_mtime_ns))
    for name, size, mtime in sorted(entries):
        digest.update(f"{name}\0{size}\0{mtime}\n".encode())
    return digest.hexdigest()


def _entry(home: Path, key: str) -> Path:
    return home / "decoded" / f"{key}.v{FORMAT}.npz"


def has(home: Path, key: str) -> bool:
    """True when an entry for `key` is there (not read: `data list` asks this of every dataset)."""
    return _entry(home, key).exists()


def cached(
    home: Path,
    key: str,
    build: Callable[[], DigitDataset],
    log: Callable[[str], None] | None = None,
    name: str = "",
    warn: Log | None = None,
) -> DigitDataset:
    """The dataset cached under `key`; else `build()`'s, stored under `key` and returned.

    Every decoder goes through here: look up, else decode and store. `log`, when given, hears
    "{name}: decoded from cache" on a hit (a miss is `build`'s to report, e.g. a progress bar).
    A damaged entry is named in one line to `warn` (else `log`, else stderr), deleted and rebuilt.
    """
    dataset = load_cached(home, key, warn or log or stderr_log)
    if dataset is not None:
        if log is not None:
            log(f"{name}: decoded from cache")
        return dataset
    dataset = build()
    store(home, key, dataset)
    return dataset


def _content_sha256(arrays: Mapping[str, np.ndarray], meta: Mapping[str, object]) -> str:
    """sha256 over every array's name, dtype, shape and bytes, and the metadata (sans the hash itself)."""
    import numpy as np

    digest = hashlib.sha256()
    digest.update(json.dumps({k: v for k, v in meta.items() if k != "sha256"}, sort_keys=True).encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"\0{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.data)  # the raw bytes, not copied
    return digest.hexdigest()


class _Damaged(Exception):
    """A cache entry that is there but must not be served."""


def load_cached(home: Path, key: str, log: Log = stderr_log) -> DigitDataset | None:
    """The cached dataset for `key`, or None: missing, or damaged (then said in one line and deleted)."""
    path = _entry(home, key)
    if not os.path.lexists(path):
        return None
    try:
        return _read_entry(path)
    except Exception as e:  # anything at all wrong with an entry means: rebuild it, never serve it
        reason = str(e) if isinstance(e, _Damaged) else f"unreadable ({type(e).__name__}: {e})"
        reason = " ".join(reason.split())
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            done = "deleted, rebuilding"
        except OSError as gone:
            done = f"could not delete it ({gone.strerror or gone}), rebuilding"
        log(f"{path}: damaged cache entry ({reason}); {done}")
        return None


def _read_entry(path: Path) -> DigitDataset:
    import numpy as np
    import torch

    from .digits import DigitDataset, Digits

    if path.stat().st_size == 0:
        raise _Damaged("0 bytes")
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files if name != "meta"}
        meta = json.loads(str(npz["meta"]))
    if not isinstance(meta, dict) or "sha256" not in meta:
        raise _Damaged("no content hash recorded")
    actual = _content_sha256(arrays, meta)
    if actual != meta["sha256"]:
        raise _Damaged(f"content sha256 {actual[:16]}... != recorded {str(meta['sha256'])[:16]}...")
    classes = tuple(str(c) for c in arrays["classes"])

    def split(prefix: str) -> Digits:
        images, labels = arrays[f"{prefix}_images"], arrays[f"{prefix}_labels"]
        return Digits(torch.from_numpy(images), torch.from_numpy(labels), classes)

    valid = split("valid") if meta["has_valid"] else None
    return DigitDataset(meta["name"], split("train"), valid, meta["provenance"], meta["valid_is_holdout"])


def store(home: Path, key: str, dataset: DigitDataset) -> None:
    """Write atomically and durably: a reader never sees a half-written entry, a crash never a 0-byte one."""
    import numpy as np

    path = _entry(home, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(path.parent)
    arrays = {
        "train_images": dataset.train.images.numpy(),
        "train_labels": dataset.train.labels.numpy(),
        "classes": np.array(dataset.classes),
    }
    if dataset.valid is not None:
        arrays.update(valid_images=dataset.valid.images.numpy(), valid_labels=dataset.valid.labels.numpy())
    meta: dict[str, object] = {
        "name": dataset.name,
        "provenance": dataset.provenance,
        "valid_is_holdout": dataset.valid_is_holdout,
        "has_valid": dataset.valid is not None,
    }
    meta["sha256"] = _content_sha256(arrays, meta)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta)), **arrays)  # type: ignore[arg-type]  # no key is allow_pickle
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
        fsync_folder(path.parent)  # and the rename itself survives a crash
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _remove_stale_tmp(folder: Path) -> None:
    """Temporary files left by writers that died (kill -9) more than an hour ago."""
    cutoff = time.time() - _STALE_TMP_S
    for tmp in folder.glob("*.tmp"):
        try:
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()
        except OSError:
            pass
