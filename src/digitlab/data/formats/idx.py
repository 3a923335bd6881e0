"""IDX files, the format MNIST and every MNIST-like dataset ship in.

Layout (big-endian): 2 zero bytes, a type byte (0x08 = unsigned byte), a byte with the
number of dimensions, one uint32 per dimension, then the data. Images are 3-D (N, 28, 28),
labels 1-D (N,). Raw or gzip-compressed.
"""

from __future__ import annotations

import gzip
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from ...errors import DataError
from ..digits import DigitDataset, Digits, check_classes

UBYTE = 0x08
IMAGES_NDIM, LABELS_NDIM = 3, 1


def read_idx(path: Path, expected_ndim: int) -> np.ndarray:
    """Read one IDX file of unsigned bytes, checking magic, rank and exact length."""
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(f"{path}: not an IDX file (only {len(raw)} bytes)")
    zero1, zero2, dtype, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero1 or zero2 or dtype != UBYTE:
        raise DataError(f"{path}: wrong magic number 0x{raw[:4].hex()} (expected 0x0000080{expected_ndim})")
    if ndim != expected_ndim:
        kind = "images" if expected_ndim == IMAGES_NDIM else "labels"
        raise DataError(f"{path}: has {ndim} dimensions, {kind} need {expected_ndim} (magic 0x{raw[:4].hex()})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated header ({len(raw)} bytes)")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise DataError(f"{path}: {what}: {len(raw)} bytes, header {list(dims)} needs {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(0)
            if head == b"\x1f\x8b":  # gzip magic, whatever the name says
                return gzip.decompress(f.read())
            return f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read: {e}") from None


def load_idx_pair(images_path: Path, labels_path: Path) -> Digits:
    """One split from an images file and its labels file; classes are the digits present."""
    images = read_idx(images_path, IMAGES_NDIM)
    labels = read_idx(labels_path, LABELS_NDIM)
    if images.shape[1:] != (28, 28):
        raise DataError(f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, digitlab needs 28x28")
    if len(images) != len(labels):
        raise DataError(f"{labels_path}: {len(labels)} labels for {len(images)} images in {images_path.name}")
    present = np.unique(labels)
    classes = tuple(str(int(v)) for v in present)
    # map raw label values to 0..C-1 in sorted order
    lookup = np.full(256, -1, dtype=np.int64)
    lookup[present] = np.arange(len(present))
    return Digits(torch.from_numpy(images.copy()), torch.from_numpy(lookup[labels]), classes)


# train-images-idx3-ubyte(.gz) and Kaggle's train-images.idx3-ubyte
_IDX_NAME = re.compile(r"^(?P<split>train|t10k)-(?P<kind>images|labels)[-.]idx(?P<ndim>[13])-ubyte(\.gz)?$")


def idx_files(folder: Path) -> dict[tuple[str, str], Path]:
    """{("train"|"t10k", "images"|"labels"): path} for the standard names in a folder."""
    found: dict[tuple[str, str], Path] = {}
    for path in sorted(folder.iterdir()):
        match = _IDX_NAME.match(path.name)
        if match and path.is_file():
            found.setdefault((match["split"], match["kind"]), path)
    return found


def labels_path_for(images_path: Path) -> Path:
    """The labels file beside an images file (`...-images-idx3-ubyte` -> `...-labels-idx1-ubyte`)."""
    name = images_path.name.replace("images", "labels").replace("idx3", "idx1")
    candidates = [images_path.with_name(name)]
    # the pair may differ in compression
    candidates.append(images_path.with_name(name[:-3] if name.endswith(".gz") else name + ".gz"))
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise DataError(f"{images_path}: no labels file beside it (looked for {candidates[0].name})")


def _unify(train: Digits, valid: Digits) -> tuple[Digits, Digits]:
    """Give both splits the union of their classes (a test split may lack a digit)."""
    classes = tuple(sorted(set(train.classes) | set(valid.classes), key=int))

    def relabel(d: Digits) -> Digits:
        remap = torch.tensor([classes.index(c) for c in d.classes], dtype=torch.int64)
        return Digits(d.images, remap[d.labels], classes)

    return relabel(train), relabel(valid)


def load_idx_folder(folder: Path, name: str | None = None) -> DigitDataset:
    """A folder with `train-*` and `t10k-*` pairs (train + test) or only `t10k-*` (a test set)."""
    files = idx_files(folder)
    splits = {split for split, _ in files}
    for split in sorted(splits):
        for kind in ("images", "labels"):
            if (split, kind) not in files:
                raise DataError(f"{folder}: has {split}-* but no {split}-{kind} IDX file")
    provenance = {"source": "idx", "path": str(folder), "files": sorted(p.name for p in files.values())}
    name = name or folder.name
    if not splits:
        raise DataError(f"{folder}: no IDX files (train-images-idx3-ubyte[.gz], t10k-...)")
    if splits == {"t10k"}:
        test = load_idx_pair(files["t10k", "images"], files["t10k", "labels"])
        check_classes(test, str(folder))
        return DigitDataset(name, test, None, {**provenance, "splits": "test only"})
    train = load_idx_pair(files["train", "images"], files["train", "labels"])
    check_classes(train, str(folder))
    valid = None
    if "t10k" in splits:
        train, valid = _unify(train, load_idx_pair(files["t10k", "images"], files["t10k", "labels"]))
    return DigitDataset(name, train, valid, provenance)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as IDX (gzip when the name ends in .gz): fixtures and exports."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    payload = bytes([0, 0, UBYTE, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(payload, mtime=0) if path.name.endswith(".gz") else payload)
