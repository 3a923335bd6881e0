"""The official MNIST files already on this machine, named by DIGITLAB_MNIST_FILES: used before any
download, and checked by the digest of their decompressed bytes (so any gzip of them will do).

From them come `mnist` (60,000 training digits, the 10,000 test digits as valid) and, exactly,
fastai's `mnist_sample`: the training set's 6,131 3s and 6,265 7s, the test set's 1,010 3s and
1,028 7s as valid.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

from ..errors import DataError
from .digits import DigitDataset
from .formats.idx import idx_files, load_idx_pair

# sha256 of each file's decompressed bytes (the canonical .gz files decompress to these)
OFFICIAL_SHA256 = {
    ("train", "images"): "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ("train", "labels"): "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ("t10k", "images"): "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ("t10k", "labels"): "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
DERIVED = {"mnist": None, "mnist_sample": ("3", "7")}  # named dataset -> the digits it keeps (None: all)
_CHUNK = 1 << 20


def content_sha256(path: Path) -> str:
    """sha256 of the file's bytes, decompressed first when it is gzip."""
    digest = hashlib.sha256()
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    with gzip.open(path, "rb") if gzipped else path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def find_official(folders: tuple[Path, ...]) -> dict[tuple[str, str], Path]:
    """The four official files among `folders` (each checked), or {} when any is missing.

    Raises DataError when a file with an official name holds other bytes: a folder the user named
    as official data that is not is worth stopping for."""
    found: dict[tuple[str, str], Path] = {}
    for folder in folders:
        if folder.is_dir():
            for key, path in idx_files(folder).items():
                found.setdefault(key, path)
    if set(found) != set(OFFICIAL_SHA256):
        return {}
    for key, path in found.items():
        if content_sha256(path) != OFFICIAL_SHA256[key]:
            raise DataError(
                f"{path}: not the official MNIST {'-'.join(key)} file (its content digest differs); "
                "fix or unset DIGITLAB_MNIST_FILES"
            )
    return found


def load_official(name: str, files: dict[tuple[str, str], Path]) -> DigitDataset:
    """`mnist` or `mnist_sample` from the four official files."""
    train = load_idx_pair(files["train", "images"], files["train", "labels"])
    test = load_idx_pair(files["t10k", "images"], files["t10k", "labels"])
    keep = DERIVED[name]
    if keep is not None:
        train, test = train.with_classes(keep), test.with_classes(keep)
    provenance = {
        "source": "official-files",
        "files": [str(files[key]) for key in sorted(files)],
        "description": "the official MNIST files, checked by content digest"
        + (f"; the {' and '.join(keep)}s, as fastai's {name}" if keep else ""),
    }
    return DigitDataset(name, train, test, provenance)
