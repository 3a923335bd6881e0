"""Decoded datasets cached as one `.npz` file keyed by the source's content hash.

Decoding MNIST_SAMPLE's ~14k PNGs takes seconds; loading one uncompressed npz of uint8
arrays takes milliseconds. The key is a sha256 of the source's bytes, so an edited source
gets a new entry and a stale one is never served. Loading never unpickles.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from .digits import DigitDataset, Digits

_FORMAT = 1  # bump when the layout below changes; old entries are then ignored


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_sha256(root: Path) -> str:
    """Hash of every file's relative path and bytes under root, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _entry(home: Path, key: str) -> Path:
    return home / "decoded" / f"{key}.v{_FORMAT}.npz"


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
                return Digits(torch.from_numpy(npz[f"{prefix}_images"]), torch.from_numpy(npz[f"{prefix}_labels"]), classes)

            valid = split("valid") if meta["has_valid"] else None
            return DigitDataset(meta["name"], split("train"), valid, meta["provenance"], meta["valid_is_holdout"])
    except (OSError, ValueError, KeyError):
        return None


def store(home: Path, key: str, dataset: DigitDataset) -> None:
    """Write atomically: a reader never sees a half-written entry."""
    path = _entry(home, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"name": dataset.name, "provenance": dataset.provenance, "valid_is_holdout": dataset.valid_is_holdout,
            "has_valid": dataset.valid is not None}
    arrays = {"train_images": dataset.train.images.numpy(), "train_labels": dataset.train.labels.numpy(),
              "classes": np.array(dataset.classes), "meta": np.array(json.dumps(meta))}
    if dataset.valid is not None:
        arrays.update(valid_images=dataset.valid.images.numpy(), valid_labels=dataset.valid.labels.numpy())
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
