"""Read digits stored as one image file per digit, in one folder per label.

Layouts (after descending through a lone wrapper folder such as an archive's `mnist_sample/`):
  root/train/<label>/*    + root/valid/<label>/*     fastai MNIST_SAMPLE, MNIST_TINY
  root/training/<label>/* + root/testing/<label>/*   mnist_png
  root/<label>/*                                     one split: valid is None
Top-level files (labels.csv) and other folders beside the splits (mnist_tiny's unlabeled
`test/`) are ignored. Images must already be 28x28: resizing would silently change the data.
Originals kept beside their digits (`<id>.photo.jpg`, `digitlab predict --correct --keep-photo`)
are not data and are skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ...errors import DataError
from ..digits import IMAGE_SIZE, DigitDataset, Digits, check_classes

PROGRESS_EVERY = 500  # images between on_progress calls
_SPLITS = {"train": ("train", "valid"), "training": ("training", "testing")}  # train folder -> (train, valid)
_JUNK = {"thumbs.db", "__macosx"}  # OS droppings that are never data
PHOTO = ".photo"  # `<id>.photo.<ext>`: the original photo of a corrected digit, beside it
RESIZE_HINT = (
    "resize the images first, e.g. with PIL: Image.open(path).convert('L').resize((28, 28)).save(path); "
    "`digitlab predict` takes single images of any size"
)


def _meaningful(folder: Path) -> list[Path]:
    """Entries of `folder`, sorted, without hidden files and OS junk."""
    try:
        entries = sorted(folder.iterdir())
    except OSError as e:
        raise DataError(f"{folder}: cannot list folder ({e})") from e
    return [p for p in entries if not p.name.startswith(".") and p.name.lower() not in _JUNK]


def class_order(names: list[str]) -> list[str]:
    """Numeric order when every name is a number ("2" < "10"), else alphabetical."""
    return sorted(names, key=int) if all(n.isdigit() for n in names) else sorted(names)


def _descend(root: Path) -> Path:
    """Skip wrapper folders: a lone sub-folder (ignoring files) that itself holds folders."""
    for _ in range(4):  # wrappers are shallow; the bound just avoids walking a deep tree
        dirs = [p for p in _meaningful(root) if p.is_dir()]
        if len(dirs) != 1 or dirs[0].name in _SPLITS:
            return root
        if not any(p.is_dir() for p in _meaningful(dirs[0])):
            return root  # a single label folder of images: keep it as a (one-class) label layout
        root = dirs[0]
    return root


def _label_folders(split: Path) -> dict[str, list[Path]]:
    """{label: sorted image files} for one split folder."""
    labels: dict[str, list[Path]] = {}
    for entry in _meaningful(split):
        if not entry.is_dir():
            raise DataError(f"{entry}: file outside a label folder (expected {split}/<label>/<image>)")
        files = [f for f in _meaningful(entry) if not f.stem.endswith(PHOTO)]
        if not files:  # would become a class the model is trained to predict without ever seeing it
            raise DataError(f"{entry}: empty class folder (no images); add images or remove the folder")
        for f in files:
            if f.is_dir():
                raise DataError(f"{f}: folder inside a label folder (expected image files only)")
        labels[entry.name] = files
    if not labels:
        raise DataError(f"{split}: no label folders (expected {split}/<label>/<image>)")
    return labels


def _decode(
    files: list[Path], out: np.ndarray, start: int, total: int, on_progress: Callable[[int, int], None] | None
) -> None:
    """Decode `files` into out[start:start+len(files)], (28, 28) uint8 each."""
    for i, path in enumerate(files, start=start):
        try:
            with Image.open(path) as im:
                if im.size != (IMAGE_SIZE, IMAGE_SIZE):  # PIL size is (width, height)
                    raise DataError(f"{path}: image is {im.size[0]}x{im.size[1]} pixels, expected 28x28: {RESIZE_HINT}")
                out[i] = np.asarray(im.convert("L"))  # convert() decodes: truncation shows here
        except UnidentifiedImageError as e:
            raise DataError(f"{path}: not an image file Pillow can read") from e
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            raise DataError(f"{path}: unreadable or truncated image ({e})") from e
        if on_progress is not None and (i + 1) % PROGRESS_EVERY == 0:
            on_progress(i + 1, total)


def load_image_folder(
    root: Path,
    name: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    min_classes: int = 2,
) -> DigitDataset:
    """Load a folder of 28x28 digit images labelled by their folder names.

    on_progress(done, total) is called every ~500 images and once at the end.
    min_classes: 2 for data to train a classifier on; 1 for a personal set of corrections.
    Raises DataError naming the file or folder for anything that is not clean digit data.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    base = _descend(root)
    dirs = {p.name: p for p in _meaningful(base) if p.is_dir()}
    if not dirs:
        raise DataError(f"{base}: no label folders or train/valid folders found")
    layout, split_dirs = _layout(base, dirs)
    splits = [_label_folders(d) for d in split_dirs]  # per split: class name -> its image files
    classes = tuple(class_order(list(splits[0])))
    for split_dir, split in zip(split_dirs[1:], splits[1:]):
        extra = [c for c in split if c not in classes]
        if extra:
            raise DataError(f"{split_dir}: classes {class_order(extra)} have no folder in {split_dirs[0]}")
    parts = _decoded(splits, classes, on_progress)
    if min_classes > 1:
        check_classes(parts[0], str(split_dirs[0]))
    if len(parts) > 1 and len(parts[1]) == 0:
        raise DataError(f"{split_dirs[1]}: validation folder has no images")
    return DigitDataset(
        name=name or root.resolve().name,
        train=parts[0],
        valid=parts[1] if len(parts) > 1 else None,
        provenance={"source": "folder", "path": str(root), "layout": layout},
    )


def _layout(base: Path, dirs: dict[str, Path]) -> tuple[str, list[Path]]:
    """("train/valid", [train, valid]) or ("training/testing", ...) for split folders, else ("labels", [base])."""
    first = next((d for d in _SPLITS if d in dirs), None)
    if first is None:
        return "labels", [base]
    train_name, valid_name = _SPLITS[first]
    return f"{train_name}/{valid_name}", [dirs[train_name]] + ([dirs[valid_name]] if valid_name in dirs else [])


def _decoded(
    splits: list[dict[str, list[Path]]], classes: tuple[str, ...], on_progress: Callable[[int, int], None] | None
) -> list[Digits]:
    """Every split's images decoded into one (N, 28, 28) uint8 array, a Digits view of it per split."""
    total = sum(len(files) for split in splits for files in split.values())
    images = np.empty((total, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)  # (N, 28, 28) uint8, all splits
    labels = np.empty(total, dtype=np.int64)  # (N,) index into classes
    parts: list[Digits] = []
    start = 0
    for split in splits:
        split_start = start
        for label, cls in enumerate(classes):
            files = split.get(cls, [])
            _decode(files, images, start, total, on_progress)
            labels[start : start + len(files)] = label
            start += len(files)
        parts.append(
            Digits(torch.from_numpy(images[split_start:start]), torch.from_numpy(labels[split_start:start]), classes)
        )
    if on_progress is not None:
        on_progress(total, total)
    return parts
