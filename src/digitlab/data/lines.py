"""Lines of handwritten digits made from single digits: what a line reader (`digitlab.line_reader`) learns from.

Each line takes a few digits (`Digits`: (N, 28, 28) uint8), each cropped to its ink, scaled to a height of
LOW..HIGH px (widths +-15%), slanted together (-SLANT..SLANT degrees, +-4 more per digit), at a random height
on a LINE_HEIGHT px line, with a gap between neighbours drawn from `gaps` (fractions of the digit's height;
below 0 the digits overlap, so strokes touch or cross as in handwriting). Ink is combined by max; a third
of the lines get thicker strokes (a 2x2 maximum), a third thinner ones (the ink's edges fainter), as pens
and photos make them.
Lines are made on the fly from a seed: an epoch of a million lines costs no memory.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

LINE_HEIGHT = 32  # px; the line reader's input height
COLUMN = 4  # px of a line per line-reader column: a line's width is whole columns
LINE_WIDTH = 192  # px of the lines made for training: up to 7 digits
LOW, HIGH = 18, 28  # a digit's height on the line, px (a photographed line is scaled so its tallest digit spans HIGH)
TRAIN_GAPS = (-0.25, 0.7)  # from overlapping by a quarter of a digit's height to 0.7 of a height apart
SLANT = 16  # degrees either way a whole line leans
SPACED, TOUCHING = (0.08, 0.6), (-0.1, 0.03)  # bench/bench_numbers.py's gaps, for evaluation
PAD = -1  # fills a line's label row past its last digit


def ink_crop(digit: np.ndarray) -> np.ndarray:
    """(28, 28) uint8 -> its ink's bounding box (the whole digit when it has no ink above 30)."""
    rows, cols = np.nonzero(digit > 30)
    if len(rows) == 0:
        return digit
    return digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def _slanted(ink: np.ndarray, degrees: float) -> np.ndarray:
    """Shear by whole pixels per row (tops lean right for degrees > 0): (h, w) -> (h, w + extra)."""
    h, w = ink.shape
    shifts = np.round(math.tan(math.radians(degrees)) * (np.arange(h)[::-1] - (h - 1) / 2)).astype(int)
    shifts -= shifts.min()
    out = np.zeros((h, w + int(shifts.max())), ink.dtype)
    for row, s in enumerate(shifts.tolist()):
        out[row, s : s + w] = ink[row]
    return out


def _digit(digit: np.ndarray, height: int, stretch: float, slant: float) -> np.ndarray:
    """One digit's ink for a line: (height, w) float32 0..255."""
    crop = ink_crop(digit).astype(np.float32)
    width = max(2, round(crop.shape[1] * height / crop.shape[0] * stretch))
    scaled = F.interpolate(torch.from_numpy(crop)[None, None], size=(height, width), mode="bilinear")[0, 0]
    return _slanted(scaled.numpy(), slant)


def make_line(
    images: np.ndarray, labels: np.ndarray, rng: np.random.Generator, n: int, gaps: tuple[float, float]
) -> tuple[np.ndarray, list[int]]:
    """Up to n random digits of `images` ((N, 28, 28) uint8) on one line: ((LINE_HEIGHT, LINE_WIDTH) uint8,
    the labels of the digits that fit, left to right)."""
    line = np.zeros((LINE_HEIGHT, LINE_WIDTH), np.float32)
    slant = rng.uniform(-SLANT, SLANT)
    x, drawn = int(rng.integers(0, 12)), []
    for i in rng.integers(0, len(images), n).tolist():
        height = int(rng.integers(LOW, HIGH + 1))
        ink = _digit(images[i], height, rng.uniform(0.85, 1.15), slant + rng.uniform(-4, 4))
        if x + ink.shape[1] > LINE_WIDTH:
            break
        top = int(rng.integers(0, LINE_HEIGHT - height + 1))
        region = line[top : top + height, x : x + ink.shape[1]]
        np.maximum(region, ink, out=region)
        drawn.append(int(labels[i]))
        x = max(x + 1, round(x + ink.shape[1] + rng.uniform(*gaps) * height))
    return _pen(line, float(rng.uniform())), drawn


def _pen(line: np.ndarray, draw: float) -> np.ndarray:
    """(H, W) float32 ink 0..255 -> uint8, strokes thicker (draw < 1/3), thinner (draw > 2/3) or as they are."""
    if draw < 1 / 3:
        padded = np.pad(line, ((0, 1), (0, 1)))
        line = np.maximum(np.maximum(padded[:-1, :-1], padded[1:, :-1]), np.maximum(padded[:-1, 1:], padded[1:, 1:]))
    elif draw > 2 / 3:
        line = 255 * (line / 255) ** 2  # the ink's soft edges fade: a thinner stroke, its core as dark
    drawn: np.ndarray = np.clip(line, 0, 255).astype(np.uint8)
    return drawn


def make_lines(
    images: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    size: int,
    gaps: tuple[float, float] = TRAIN_GAPS,
    lengths: tuple[int, int] = (3, 7),
) -> tuple[torch.Tensor, torch.Tensor]:
    """`size` lines: ((size, 1, LINE_HEIGHT, LINE_WIDTH) float 0..1, (size, longest) int64 labels padded with PAD).
    lengths: digits a line holds, low inclusive, high exclusive (fewer when they do not fit)."""
    pictures, rows = [], []
    for _ in range(size):
        picture, drawn = make_line(images, labels, rng, int(rng.integers(*lengths)), gaps)
        pictures.append(picture)
        rows.append(drawn)
    targets = torch.full((size, max(map(len, rows))), PAD, dtype=torch.long)
    for row, drawn in enumerate(rows):
        targets[row, : len(drawn)] = torch.tensor(drawn, dtype=torch.long)
    return torch.from_numpy(np.stack(pictures))[:, None].float() / 255, targets


@dataclass
class LineBatches:
    """Batches of lines made from `images`, for a `Learner`: `n_batches` of `bs` lines an epoch. Training
    batches (`fresh`) differ every epoch (seeded by seed and epoch); validation batches are the same each time."""

    images: np.ndarray  # (N, 28, 28) uint8
    labels: np.ndarray  # (N,) int64, the digit each image shows
    n_batches: int
    bs: int
    seed: int
    gaps: tuple[float, float] = TRAIN_GAPS
    lengths: tuple[int, int] = (3, 7)
    fresh: bool = True
    epoch: int = 0

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.fresh:
            self.epoch += 1
        for _ in range(self.n_batches):
            yield make_lines(self.images, self.labels, rng, self.bs, self.gaps, self.lengths)
