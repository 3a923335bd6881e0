"""IDX files, the format MNIST and every MNIST-like dataset ship in.

Layout (big-endian): 2 zero bytes, a type byte (0x08 = unsigned byte), a byte with the
number of dimensions, one uint32 per dimension, then the data. Images are 3-D (N, 28, 28),
labels 1-D (N,). Raw or gzip-compressed.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from ...errors import DataError
from ..digits import IMAGE_SIZE, DigitDataset, Digits, check_classes

UBYTE = 0x08
IMAGES_NDIM, LABELS_NDIM = 3, 1
MAX_IDX_BYTES = 512 * 1024**2  # 512 MiB of data (~680k images): MNIST's largest file is 47 MB
_MAX_DEFLATE_RATIO = 1032  # deflate cannot expand more than this: bounds what a gzip of n bytes holds
_CHUNK = 1024 * 1024  # bytes decompressed per read
RESIZE_HINT = (
    "resize them first, e.g. with PIL: Image.open(path).convert('L').resize((28, 28)); "
    "`digitlab predict` takes single images of any size"
)


def read_idx(path: Path, expected_ndim: int) -> np.ndarray:
    """Read one IDX file of unsigned bytes, checking magic, rank and exact length.

    The header's declared size is checked against MAX_IDX_BYTES and against what the file can
    hold before anything is allocated, and gzip is decompressed as a stream that stops one byte
    past the declared size: a gzip bomb costs a refusal, not gigabytes.
    """
    try:
        with open(path, "rb") as raw:
            file_size = os.fstat(raw.fileno()).st_size
            compressed = raw.read(2) == b"\x1f\x8b"  # gzip magic, whatever the name says
            raw.seek(0)
            stream: io.BufferedIOBase = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
            return _read_stream(path, stream, expected_ndim, file_size, compressed)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read: {' '.join(str(e).split())}") from None


def _read_stream(
    path: Path, stream: io.BufferedIOBase, expected_ndim: int, file_size: int, compressed: bool
) -> np.ndarray:
    magic = stream.read(4)
    if len(magic) < 4:
        raise DataError(f"{path}: not an IDX file (only {len(magic)} bytes)")
    zero1, zero2, dtype, ndim = magic
    if zero1 or zero2 or dtype != UBYTE:
        raise DataError(f"{path}: wrong magic number 0x{magic.hex()} (expected 0x0000080{expected_ndim})")
    if ndim != expected_ndim:
        kind = "images" if expected_ndim == IMAGES_NDIM else "labels"
        raise DataError(f"{path}: has {ndim} dimensions, {kind} need {expected_ndim} (magic 0x{magic.hex()})")
    header = 4 + 4 * ndim
    packed = stream.read(4 * ndim)
    if len(packed) < 4 * ndim:
        raise DataError(f"{path}: truncated header ({4 + len(packed)} bytes)")
    dims = struct.unpack(f">{ndim}I", packed)
    if ndim == IMAGES_NDIM and dims[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"{path}: images are {dims[1]}x{dims[2]}, digitlab needs 28x28: {RESIZE_HINT}")
    declared = int(np.prod(dims, dtype=np.int64))
    if declared > MAX_IDX_BYTES:
        raise DataError(
            f"{path}: header {list(dims)} declares {declared:,} bytes, more than the {MAX_IDX_BYTES:,} limit; refused"
        )
    expected = header + declared
    if not compressed and file_size != expected:
        what = "truncated" if file_size < expected else "has trailing bytes"
        raise DataError(f"{path}: {what}: {file_size} bytes, header {list(dims)} needs {expected}")
    if compressed and expected > file_size * _MAX_DEFLATE_RATIO:
        raise DataError(
            f"{path}: truncated: a gzip of {file_size:,} bytes cannot hold the {expected:,} bytes "
            f"header {list(dims)} needs"
        )
    data = bytearray(declared)
    view = memoryview(data)
    done = 0
    while done < declared:
        n = stream.readinto(view[done : done + _CHUNK])
        if not n:
            raise DataError(f"{path}: truncated: {header + done} bytes, header {list(dims)} needs {expected}")
        done += n
    if stream.read(1):  # one byte past the declared size is enough to know; never read the rest
        raise DataError(f"{path}: has trailing bytes: more than the {expected} bytes header {list(dims)} needs")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def load_idx_pair(images_path: Path, labels_path: Path) -> Digits:
    """One split from an images file and its labels file; classes are the digits present."""
    images = read_idx(images_path, IMAGES_NDIM)
    labels = read_idx(labels_path, LABELS_NDIM)
    if len(images) != len(labels):
        raise DataError(f"{labels_path}: {len(labels)} labels for {len(images)} images in {images_path.name}")
    if len(labels) and labels.max() > 9:
        at = int(np.argmax(labels > 9))
        raise DataError(f"{labels_path}: label {int(labels[at])} at index {at} is not a digit (labels must be 0..9)")
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
