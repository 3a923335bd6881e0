"""Read Keras' `mnist.npz` (x_train, y_train, x_test, y_test) without ever unpickling.

x: (N, 28, 28) uint8 (float in [0, 1] is accepted when it is exactly bytes / 255);
y: (N,) integers 0..9. Labels are re-indexed to the sorted distinct labels of both splits, so a
file holding only 3s and 7s gives classes ("3", "7") with labels 0 and 1.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from ...errors import DataError
from ..digits import IMAGE_SIZE, DigitDataset, Digits, check_classes

_ROUND_TRIP_TOL = 1e-3  # in 0..255 units: float32 k/255*255 is within ~1e-5 of k
MAX_ARRAY_BYTES = 1024**3  # 1 GiB per array: MNIST's x_train is 47 MB as bytes, 376 MB as float64
_KEYS = ("x_train", "y_train", "x_test", "y_test")
RESIZE_HINT = (
    "resize them first, e.g. with PIL: Image.open(path).convert('L').resize((28, 28)); "
    "`digitlab predict` takes single images of any size"
)


def _check_headers(path: Path) -> None:
    """Read each array's .npy header from the zip before numpy allocates anything.

    Refuses object (pickled) dtypes, shapes that are not images / labels, arrays larger than
    MAX_ARRAY_BYTES, and headers declaring more or fewer bytes than the member holds.
    """
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            key = info.filename.removesuffix(".npy")
            if key not in _KEYS:
                continue
            with zf.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                elif version in ((2, 0), (3, 0)):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                else:
                    raise ValueError(f"unsupported .npy version {version}")
                offset = member.tell()
            if dtype.hasobject:
                raise DataError(f"{path}: {key} holds Python objects (pickled data is refused, never loaded)")
            if key.startswith("x") and len(shape) == 3 and shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
                raise DataError(
                    f"{path}: {key} holds {shape[1]}x{shape[2]} images, digitlab needs 28x28: {RESIZE_HINT}"
                )
            declared = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if declared > MAX_ARRAY_BYTES:
                raise DataError(
                    f"{path}: {key} declares shape {shape} ({declared:,} bytes), "
                    f"more than the {MAX_ARRAY_BYTES:,} limit; refused"
                )
            if offset + declared != info.file_size:
                what = "truncated" if offset + declared > info.file_size else "has trailing bytes"
                raise DataError(
                    f"{path}: {key} is {what}: {info.file_size - offset:,} bytes of data, its shape {shape} "
                    f"needs {declared:,}"
                )


def _images(path: Path, key: str, x: np.ndarray) -> np.ndarray:
    """Validate one image array and return it as (N, 28, 28) uint8."""
    if x.ndim != 3 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"{path}: {key} has shape {x.shape}, expected (N, 28, 28)")
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.integer):  # e.g. int64 pixels: fine if every value is a byte
        if x.size and (x.min() < 0 or x.max() > 255):
            raise DataError(f"{path}: {key} has pixel values outside 0..255")
        return x.astype(np.uint8)
    if np.issubdtype(x.dtype, np.floating):
        if x.size and (not np.isfinite(x).all() or x.min() < 0 or x.max() > 1):
            raise DataError(f"{path}: {key} is {x.dtype} but not within [0, 1]")
        scaled = x.astype(np.float64) * 255
        rounded = np.round(scaled)
        if x.size and np.abs(scaled - rounded).max() > _ROUND_TRIP_TOL:
            raise DataError(f"{path}: {key} is {x.dtype} in [0, 1] but not whole multiples of 1/255 (not bytes)")
        return rounded.astype(np.uint8)
    raise DataError(f"{path}: {key} has dtype {x.dtype}, expected uint8")


def _labels(path: Path, key: str, y: np.ndarray, n: int) -> np.ndarray:
    """Validate one label array and return it as (N,) int64 raw labels."""
    if y.ndim != 1:
        raise DataError(f"{path}: {key} has shape {y.shape}, expected ({n},)")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: {key} has dtype {y.dtype}, expected integers")
    if len(y) != n:
        raise DataError(f"{path}: {key} has {len(y)} labels but there are {n} images")
    if y.size and (y.min() < 0 or y.max() > 9):
        bad = int(np.argmax((y < 0) | (y > 9)))
        raise DataError(f"{path}: {key} has label {int(y[bad])} at index {bad}, not a digit (labels must be 0..9)")
    return y.astype(np.int64)


def load_npz(path: Path, name: str | None = None) -> DigitDataset:
    """Load a Keras-style mnist.npz; valid is None when there is no x_test/y_test.

    Raises DataError naming the file for a missing key, a wrong shape or dtype, mismatched
    counts, out-of-range labels, pickled (object) arrays, or a corrupt file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if not zipfile.is_zipfile(path):  # .npz is a zip of .npy files; checked first for a clear message
        raise DataError(f"{path}: not an .npz archive, or truncated (no zip directory found)")
    splits: list[tuple[np.ndarray, np.ndarray]] = []  # (images (N, 28, 28) uint8, raw labels (N,) int64)
    try:
        _check_headers(path)  # shapes and sizes, before numpy allocates anything
        data = np.load(path, allow_pickle=False)  # allow_pickle=False: a .npz must never run code
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise DataError(f"{path}: not an .npz archive (a single .npy array?)")
        with data:
            keys = set(data.files)
            if not {"x_train", "y_train"} <= keys:
                raise DataError(f"{path}: missing {sorted({'x_train', 'y_train'} - keys)} (has {sorted(keys)})")
            if ("x_test" in keys) != ("y_test" in keys):
                raise DataError(f"{path}: has only one of x_test / y_test")
            for part in ("train", "test") if "x_test" in keys else ("train",):
                x = _images(path, f"x_{part}", data[f"x_{part}"])
                splits.append((x, _labels(path, f"y_{part}", data[f"y_{part}"], len(x))))
    except DataError:
        raise
    except ValueError as e:  # numpy's refusal of object arrays, a malformed .npy header, or a short read
        reason = " ".join(str(e).split())
        if "pickle" in reason.lower():
            raise DataError(f"{path}: not an .npz of plain arrays (pickled objects are refused) ({reason})") from e
        raise DataError(f"{path}: corrupt or truncated .npz ({reason})") from e
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as e:
        raise DataError(f"{path}: corrupt or unreadable .npz ({type(e).__name__}: {e})") from e

    # classes: distinct raw labels of both splits, numerically sorted, as strings
    distinct = np.unique(np.concatenate([y for _, y in splits]))
    classes = tuple(str(int(v)) for v in distinct)
    parts = [
        Digits(
            torch.from_numpy(np.ascontiguousarray(x)),
            torch.from_numpy(np.searchsorted(distinct, y).astype(np.int64)),
            classes,
        )
        for x, y in splits
    ]
    check_classes(parts[0], str(path))
    return DigitDataset(
        name=name or path.stem,
        train=parts[0],
        valid=parts[1] if len(parts) > 1 else None,
        provenance={"source": "npz", "path": str(path)},
    )
