"""Digits in memory: the one container every reader produces and every model consumes.

A `Digits` is a split (images, labels, class names); a `DigitDataset` is a named pair of
splits plus where they came from. Images stay uint8 until a model needs floats, so that
10k digits cost 7.8 MB, not 31 MB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import DataError

IMAGE_SIZE = 28  # MNIST digits are 28x28 pixels


@dataclass(frozen=True)
class Digits:
    """One split of a dataset.

    images:  (N, 28, 28) uint8, 0 = background, 255 = ink (MNIST polarity)
    labels:  (N,) int64, indices into `classes`
    classes: class names, e.g. ["3", "7"]; label i means classes[i]
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if (
            self.images.dtype != torch.uint8
            or self.images.ndim != 3
            or tuple(self.images.shape[1:]) != (IMAGE_SIZE, IMAGE_SIZE)
        ):
            raise DataError(f"images must be (N, 28, 28) uint8, got {tuple(self.images.shape)} {self.images.dtype}")
        if self.labels.dtype != torch.int64 or self.labels.shape != (len(self.images),):
            raise DataError(
                f"labels must be ({len(self.images)},) int64, got {tuple(self.labels.shape)} {self.labels.dtype}"
            )
        if len(self.labels) and (int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.classes)):
            raise DataError(f"labels must lie in 0..{len(self.classes) - 1} for classes {list(self.classes)}")

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        """One line, not the tensors: `Digits(2,102 images of 3s and 7s (3: 1,051, 7: 1,051), (2102, 28, 28) uint8)`."""
        return f"Digits({_describe(self)}, {tuple(self.images.shape)} uint8)"

    def counts(self) -> dict[str, int]:
        """Number of images per class name, in class order."""
        per_class = torch.bincount(self.labels, minlength=len(self.classes)).tolist()
        return dict(zip(self.classes, per_class))

    def subset(self, index: torch.Tensor) -> Digits:
        """The digits at `index` (a LongTensor or bool mask), with the same classes."""
        return Digits(self.images[index], self.labels[index], self.classes)

    def with_classes(self, wanted: tuple[str, ...]) -> Digits:
        """Keep only the digits whose class is in `wanted`, relabelled to `wanted`'s order.

        Used to evaluate a 3-vs-7 model on a 10-digit test set: the other digits are dropped.
        A wanted class absent here simply has no images.
        """
        if not set(wanted) & set(self.classes):
            raise DataError(f"none of the classes {list(wanted)} are in this data (it has {list(self.classes)})")
        # old label -> new label, -1 for dropped classes
        remap = torch.full((len(self.classes),), -1, dtype=torch.int64)
        for new, name in enumerate(wanted):
            if name in self.classes:
                remap[self.classes.index(name)] = new
        new_labels = remap[self.labels]
        keep = new_labels >= 0
        return Digits(self.images[keep], new_labels[keep], tuple(wanted))

    def float_images(self) -> torch.Tensor:
        """(N, 28, 28) float32 in [0, 1], the book's `tensor(...).float()/255`."""
        return self.images.float().div_(255)


def concat(parts: list[Digits]) -> Digits:
    """Join splits that share the same classes."""
    classes = parts[0].classes
    if any(p.classes != classes for p in parts):
        raise DataError(f"cannot join splits with different classes: {[list(p.classes) for p in parts]}")
    return Digits(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]), classes)


def stratified_holdout(digits: Digits, fraction: float = 0.2, seed: int = 0) -> tuple[Digits, Digits]:
    """Split into (train, valid) keeping each class's share; deterministic for a given seed.

    Each class contributes round(fraction * its count) digits to valid, chosen by a seeded
    permutation, so the same data always gives the same split on every machine.
    """
    generator = torch.Generator().manual_seed(seed)
    valid_mask = torch.zeros(len(digits), dtype=torch.bool)
    for label in range(len(digits.classes)):
        members = (digits.labels == label).nonzero().flatten()
        n_valid = round(fraction * len(members))
        chosen = members[torch.randperm(len(members), generator=generator)[:n_valid]]
        valid_mask[chosen] = True
    return digits.subset(~valid_mask), digits.subset(valid_mask)


def _describe(digits: Digits) -> str:
    """'1,682 images of 3s and 7s (3: 841, 7: 841)': counts in words, for reprs."""
    counts = digits.counts()
    names = [f"{c}s" for c in digits.classes]
    kinds = " and ".join(names) if len(names) <= 2 else f"{len(names)} classes"
    per_class = ", ".join(f"{c}: {n:,}" for c, n in counts.items())
    return f"{len(digits):,} images of {kinds} ({per_class})"


@dataclass(frozen=True, repr=False)
class DigitDataset:
    """A dataset as it was loaded: its splits and its provenance.

    valid_is_holdout: True when `valid` was carved out of the training data (no test split
    existed); then training with a separate `--valid` set may use train + valid again.
    """

    name: str
    train: Digits
    valid: Digits | None
    provenance: dict[str, Any] = field(default_factory=dict)  # source, url/path, sha256, notes
    valid_is_holdout: bool = False

    @property
    def classes(self) -> tuple[str, ...]:
        return self.train.classes

    def __repr__(self) -> str:
        """`DigitDataset('mnist_sample', train: 1,682 images of 3s and 7s (...), valid: 420 ..., source: ...)`."""
        valid = (
            "none" if self.valid is None else _describe(self.valid) + (" (a holdout)" if self.valid_is_holdout else "")
        )
        source = self.provenance.get("source")
        return (
            f"DigitDataset({self.name!r}, train: {_describe(self.train)}, valid: {valid}"
            + (f", source: {source}" if source else "")
            + ")"
        )

    def all_training_data(self) -> Digits:
        """Everything that may be trained on when validation comes from elsewhere."""
        if self.valid is not None and self.valid_is_holdout:
            return concat([self.train, self.valid])
        return self.train

    def summary(self) -> dict[str, Any]:
        """Counts per split and class, plus provenance: what `digitlab data info` shows."""
        splits = {"train": self.train} if self.valid is None else {"train": self.train, "valid": self.valid}
        return {
            "name": self.name,
            "classes": list(self.classes),
            "splits": {split: {"n": len(d), "per_class": d.counts()} for split, d in splits.items()},
            "valid_is_holdout": self.valid_is_holdout,
            "provenance": self.provenance,
        }


def check_classes(digits: Digits, where: str) -> None:
    """A classifier needs at least two classes with images in them."""
    present = [c for c, n in digits.counts().items() if n > 0]
    if len(present) < 2:
        raise DataError(f"{where}: need at least 2 classes with images, found {len(present)} ({present})")


def with_holdout(dataset: DigitDataset, fraction: float = 0.2, seed: int = 0) -> DigitDataset:
    """A dataset with a valid split: itself, or its train split cut by `stratified_holdout`."""
    if dataset.valid is not None:
        return dataset
    train, valid = stratified_holdout(dataset.train, fraction, seed)
    note = f"valid is a stratified {fraction:.0%} holdout of the training data (seed {seed})"
    return DigitDataset(dataset.name, train, valid, {**dataset.provenance, "holdout": note}, valid_is_holdout=True)


def evaluation_split(dataset: DigitDataset) -> Digits:
    """The digits to evaluate on when a dataset is given as `--valid`: its test split if it has one."""
    return dataset.valid if dataset.valid is not None else dataset.train
