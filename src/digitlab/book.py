"""The two fastai helpers the chapter's first cells call, written here: `untar_data` and `tensor`.

    path = untar_data("mnist_sample")               # fastai: untar_data(URLs.MNIST_SAMPLE)
    threes = sorted((path / "train" / "3").iterdir())  # fastai: (path/'train'/'3').ls().sorted()
    im3 = Image.open(threes[1])
    tensor(im3)[4:10, 4:10]                          # a PIL image as a (28, 28) uint8 tensor

`untar_data` gives a folder in fastai's own layout, whatever the data came from (the official
files, the canonical archive or the offline mirror), so the book's path cells read real PNG files:
`URLs.MNIST_SAMPLE` and `URLs.MNIST_TINY` -> `train|valid/3|7/<n>.png` and `labels.csv`;
`URLs.MNIST` -> `training|testing/<digit>/<n>.png`.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import Settings
from .core.progress import Log, stderr_log
from .data.digits import DigitDataset


def tensor(x: Any, *rest: Any, **kwargs: Any) -> torch.Tensor:
    """fastai's `tensor`: from a PIL image, an array, a list, or numbers (`tensor(1, 2, 3)`).

    A PIL image becomes its pixels: (H, W) uint8 for grayscale, (H, W, C) for colour.
    """
    if rest:
        x = (x, *rest)
    if hasattr(x, "getbands"):  # a PIL image (without importing PIL for everything else)
        x = np.asarray(x)
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x.copy()) if not kwargs else torch.tensor(x, **kwargs)
    if isinstance(x, (list, tuple)) and x and all(isinstance(v, torch.Tensor) for v in x):
        return torch.stack(list(x))
    return torch.tensor(x, **kwargs)


class URLs:
    """fastai's `URLs` for chapter 4's datasets: `untar_data(URLs.MNIST_SAMPLE)`. Each is the name
    `untar_data` and `load_dataset` know (fastai's are archive addresses; the data is the same)."""

    MNIST_SAMPLE = "mnist_sample"  # 3s and 7s: train|valid/3|7/*.png
    MNIST_TINY = "mnist_tiny"
    MNIST = "mnist"  # all ten digits: training|testing/<digit>/*.png


def to_np(x: Any) -> np.ndarray:
    """fastai's `to_np`: a tensor (on any device, with or without grad) as a numpy array."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


LAYOUT = 2  # bump when the folder layout changes: a new folder name, so an old layout is never reused
SPLIT_NAMES = {"mnist": ("training", "testing")}  # fastai's names; other datasets: train|valid
LABELS_CSV = ("mnist_sample", "mnist_tiny")  # fastai ships these two with labels.csv (name,label)


def untar_data(name: str = "mnist_sample", settings: Settings | None = None, log: Log = stderr_log) -> Path:
    """A folder of the named dataset (see `load_dataset`) in fastai's layout, written once:
    `train|valid/<label>/<n>.png` (and labels.csv for the 3s and 7s), `training|testing/...` for mnist.

    The folder lives in the cache under `folders/`, named after the data's content, so a second
    call returns at once and different data never share a folder.
    """
    from .data.loading import load_dataset

    settings = settings or Settings.from_env()
    dataset = load_dataset(name, settings, log)
    key = _content_key(dataset)
    folder = settings.folder("folders") / f"{dataset.name}-{key}"
    if not folder.exists():
        _write_png_tree(dataset, folder)
        log(f"{name}: PNG files in {folder}")
    return folder


def _content_key(dataset: DigitDataset) -> str:
    digest = hashlib.sha256(f"layout {LAYOUT}".encode())
    for split in (dataset.train, dataset.valid):
        if split is not None:
            digest.update(split.images.numpy().tobytes())
            digest.update(split.labels.numpy().tobytes())
            digest.update("|".join(split.classes).encode())
    return digest.hexdigest()[:16]


def _write_png_tree(dataset: DigitDataset, folder: Path) -> None:
    """Write into a temporary sibling, then rename: an interrupted write never looks complete."""
    from PIL import Image

    temp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
    try:
        train, valid = SPLIT_NAMES.get(dataset.name, ("train", "valid"))
        rows = []  # (name relative to the folder, label index) for labels.csv
        for split, digits in ((train, dataset.train), (valid, dataset.valid)):
            if digits is None:
                continue
            for label, name in enumerate(digits.classes):
                (temp / split / name).mkdir(parents=True)
                for n, i in enumerate((digits.labels == label).nonzero().flatten().tolist()):
                    Image.fromarray(digits.images[i].numpy()).save(temp / split / name / f"{n}.png")
                    rows.append((f"{split}/{name}/{n}.png", label))
        if dataset.name in LABELS_CSV:
            lines = ["name,label", *(f"{file},{label}" for file, label in rows)]
            (temp / "labels.csv").write_text("\n".join(lines) + "\n")
        temp.rename(folder)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
