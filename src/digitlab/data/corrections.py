"""Your corrections as a dataset: each digit the model misread, saved as the 28x28 it saw, under its true label.

The folder is the standard one-split layout (`<folder>/<label>/<id>.png`, 28x28 grayscale, white
ink on black), so every digitlab command reads it as data (`digitlab evaluate --data my-digits`,
`digitlab train --data my-digits --init RUN`); the original photo goes beside its digit as
`<id>.photo.<ext>` only when asked (`--keep-photo`), and the folder loader skips it. A hidden
marker file says the folder is a set of corrections, which may hold a single class.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image

from ..core.defaults import CORRECTIONS_FOLDER, IMAGE_SUFFIXES
from ..core.durable import fsync_file, fsync_folder
from ..errors import DataError, DigitlabError
from .digits import DigitDataset
from .formats.folders import PHOTO, load_image_folder

DEFAULT_FOLDER = CORRECTIONS_FOLDER
MARKER = ".digitlab-corrections"  # hidden: the loader skips it; it lets the folder hold a single class


def is_corrections(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def check_corrections_folder(folder: Path, flag: str = "--corrections") -> None:
    """Corrections go into a new folder, an empty one, or one they were saved to before (its marker):
    never among a user's other files, never where a file is."""
    if folder.exists() and not folder.is_dir():
        raise DigitlabError(f"{flag} {folder} is a file: corrections go into a folder")
    if folder.is_dir() and not is_corrections(folder) and any(folder.iterdir()):
        raise DigitlabError(
            f"{flag} {folder} holds other files, not digitlab's corrections: choose a new or empty folder"
        )


def check_label(label: str, classes: tuple[str, ...], flag: str = "--correct") -> str:
    """The label as a class of the model, or a one-line error listing the classes it has."""
    if label not in classes:
        raise DigitlabError(f"{flag} {label}: the model has no class {label!r} (its classes: {', '.join(classes)})")
    if "/" in label or "\\" in label or label.startswith("."):
        raise DigitlabError(f"{flag} {label}: a class name that cannot be a folder name")
    return label


def save_correction(
    folder: Path, digit: torch.Tensor, label: str, photo: bytes | None = None, suffix: str = ""
) -> Path:
    """Save the (28, 28) uint8 digit the model saw as `folder/label/<id>.png` (atomically; the id is the
    time and the digit's hash, so the same digit saved twice is one file); with `photo`, the original
    bytes beside it as `<id>.photo<suffix>` (an image file's suffix, e.g. ".jpg"). Returns the digit's path."""
    if digit.dtype != torch.uint8 or tuple(digit.shape) != (28, 28):
        raise DigitlabError(f"a correction is a (28, 28) uint8 digit, got {tuple(digit.shape)} {digit.dtype}")
    pixels = digit.contiguous().numpy()
    ident = f"{time.strftime('%Y%m%d-%H%M%S')}-{hashlib.sha256(pixels.tobytes()).hexdigest()[:10]}"
    target = folder / label
    try:
        target.mkdir(parents=True, exist_ok=True)
        marker = folder / MARKER
        if not marker.exists():
            marker.write_text("digits corrected by hand with digitlab (predict --correct, serve --corrections)\n")
        existing = sorted(target.glob(f"*-{ident.rsplit('-', 1)[1]}.png"))
        if existing:  # this very digit is already saved under this label
            return existing[0]
        path = target / f"{ident}.png"
        _write(path, lambda tmp: Image.fromarray(pixels, mode="L").save(tmp, format="PNG"))
        if photo is not None:
            kept = suffix.lower() if suffix.lower() in IMAGE_SUFFIXES else ".img"
            _write(target / f"{ident}{PHOTO}{kept}", lambda tmp: tmp.write_bytes(photo))
    except OSError as e:
        raise DigitlabError(f"cannot save the correction in {target}: {e.strerror or e}") from None
    fsync_folder(target)
    return path


def _write(path: Path, write: Callable[[Path], object]) -> None:
    """A file written to a hidden temporary name, fsynced, renamed into place (never half a file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        fsync_file(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def load_corrections(folder: Path) -> DigitDataset:
    """The corrections in `folder` as one split (valid is None); one class is enough."""
    try:
        dataset = load_image_folder(folder, name=folder.resolve().name, min_classes=1)
    except DataError as e:
        raise DataError(f"{e} (a folder of corrections made by digitlab predict --correct)") from None
    counts = ", ".join(f"{c}: {n}" for c, n in dataset.train.counts().items())
    provenance = {"source": "corrections", "path": str(folder), "counts": counts}
    return DigitDataset(dataset.name, dataset.train, None, provenance)
