"""Decoded datasets cached as one `.npz` file keyed by the source's content hash.

Decoding MNIST_SAMPLE's ~14k PNGs takes seconds; loading one uncompressed npz of uint8
arrays takes milliseconds. The key is a sha256 of the source's bytes (archives, downloads) or
of its files' names, sizes and modification times (folders), so an edited source gets a new
entry and a stale one is never served. Loading never unpickles.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .digits import DigitDataset, Digits

FORMAT = 1  # bump when the layout below changes; old entries are then ignored


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_fingerprint(root: Path) -> str:
    """sha256 of every file's relative path, size and modification time under root.

    A folder's key: reading the bytes of ~14k PNGs costs about a second, their stat() a tenth
    of that, and any edit, addition, removal or rename of a file changes the key.
    """
    digest = hashlib.sha256()
    stack = [root]
    entries: list[tuple[str, int, int]] = []
    while stack:
        with os.scandir(stack.pop()) as listing:
            for entry in listing:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
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
    home: Path, key: str, build: Callable[[], DigitDataset], log: Callable[[str], None] | None = None, name: str = ""
) -> DigitDataset:
    """The dataset cached under `key`; else `build()`'s, stored under `key` and returned.

    Every decoder goes through here: look up, else decode and store. `log`, when given, hears
    "{name}: decoded from cache" on a hit (a miss is `build`'s to report, e.g. a progress bar).
    A damaged entry counts as a miss and is rebuilt.
    """
    dataset = load_cached(home, key)
    if dataset is not None:
        if log is not None:
            log(f"{name}: decoded from cache")
        return dataset
    dataset = build()
    store(home, key, dataset)
    return dataset


def load_cached(home: Path, key: str) -> DigitDataset | None:
    """The cached dataset for `key`, or None (missing or unreadable entries are ignored)."""
    path = _entry(home, key)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            classes = tuple(str(c) for c in npz["classes"])

            def split(prefix: str) -> Digits:
                return Digits(
                    torch.from_numpy(npz[f"{prefix}_images"]), torch.from_numpy(npz[f"{prefix}_labels"]), classes
                )

            valid = split("valid") if meta["has_valid"] else None
            return DigitDataset(meta["name"], split("train"), valid, meta["provenance"], meta["valid_is_holdout"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # a damaged entry is rebuilt, not fatal
        return None


def store(home: Path, key: str, dataset: DigitDataset) -> None:
    """Write atomically: a reader never sees a half-written entry."""
    path = _entry(home, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "name": dataset.name,
        "provenance": dataset.provenance,
        "valid_is_holdout": dataset.valid_is_holdout,
        "has_valid": dataset.valid is not None,
    }
    arrays = {
        "train_images": dataset.train.images.numpy(),
        "train_labels": dataset.train.labels.numpy(),
        "classes": np.array(dataset.classes),
        "meta": np.array(json.dumps(meta)),
    }
    if dataset.valid is not None:
        arrays.update(valid_images=dataset.valid.images.numpy(), valid_labels=dataset.valid.labels.numpy())
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]  # mypy: a key might be allow_pickle (none is)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
