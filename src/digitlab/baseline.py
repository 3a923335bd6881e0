"""The chapter's first model: pixel similarity to "ideal" (mean) digits.

No training, no parameters beyond one mean image per class: a digit is predicted as the
class whose ideal digit is closest, by mean absolute difference (L1) or root mean squared
error (RMSE). Everything works on whole batches by broadcasting.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .core.defaults import METRICS
from .data.digits import Digits
from .errors import DigitlabError

_CHUNK = 2048  # images per chunk for (N, C) tables: bounds memory at chunk*C floats


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise DigitlabError(f"unknown metric {metric!r}: choose one of {', '.join(METRICS)}")


def mnist_distance(a: torch.Tensor, b: torch.Tensor, metric: str = "l1") -> torch.Tensor:
    """Distance between images over their last two axes (the book's `mnist_distance`).

    Broadcasts like the book: (28, 28) vs (28, 28) -> scalar; (N, 28, 28) vs (28, 28) -> (N,).
    Two stacks, (N, 28, 28) vs (C, 28, 28), give the (N, C) table of every image against
    every ideal digit, computed without building an (N, C, 28, 28) tensor.
    """
    _check_metric(metric)
    if a.ndim == 3 and b.ndim == 3:
        return distance_table(a, b, metric)
    diff = a - b
    if metric == "l1":
        return diff.abs().mean((-1, -2))
    return diff.square().mean((-1, -2)).sqrt()


def distance_table(images: torch.Tensor, ideals: torch.Tensor, metric: str = "l1") -> torch.Tensor:
    """(N, H, W) images against (C, H, W) ideal digits -> (N, C) distances.

    L1 uses `torch.cdist(p=1)` on chunks; RMSE uses ||a-b||^2 = ||a||^2 + ||b||^2 - 2ab,
    one matrix product. Neither holds more than chunk x C distances besides the inputs.
    """
    _check_metric(metric)
    flat_a = images.reshape(len(images), -1).float()  # (N, 784)
    flat_b = ideals.reshape(len(ideals), -1).float()  # (C, 784)
    n_pixels = flat_a.shape[1]
    if flat_b.shape[1] != n_pixels:
        raise DigitlabError(
            f"image size {tuple(images.shape[1:])} does not match ideal digits {tuple(ideals.shape[1:])}"
        )
    if metric == "rmse":
        # float64 for the subtraction: ||a||^2 and 2ab are ~100x the squared distance
        a64, b64 = flat_a.double(), flat_b.double()
        squared = a64.square().sum(1, keepdim=True) + b64.square().sum(1) - 2 * a64 @ b64.T
        return (squared.clamp_min(0) / n_pixels).sqrt().float()
    out = torch.empty(len(flat_a), len(flat_b))
    for start in range(0, len(flat_a), _CHUNK):
        out[start : start + _CHUNK] = torch.cdist(flat_a[start : start + _CHUNK], flat_b, p=1) / n_pixels
    return out


def ideal_digits(digits: Digits) -> torch.Tensor:
    """(C, 28, 28) float mean image of each class, pixels in [0, 1] (the book's mean3, mean7)."""
    sums = torch.zeros(len(digits.classes), 28 * 28)
    sums.index_add_(0, digits.labels, digits.images.reshape(len(digits), -1).float())
    counts = torch.bincount(digits.labels, minlength=len(digits.classes)).clamp_min(1)
    return (sums / counts[:, None] / 255).reshape(-1, 28, 28)


def is_closer_to_first(
    x: torch.Tensor, ideal_a: torch.Tensor, ideal_b: torch.Tensor, metric: str = "l1"
) -> torch.Tensor:
    """The book's `is_3`: True where x is closer to ideal_a than to ideal_b (any batch shape)."""
    return mnist_distance(x, ideal_a, metric) < mnist_distance(x, ideal_b, metric)


@dataclass
class PixelSimilarity:
    """Nearest-ideal-digit classifier for any number of classes."""

    ideals: torch.Tensor  # (C, 28, 28) float in [0, 1]
    classes: tuple[str, ...]
    metric: str = "l1"

    @classmethod
    def fit(cls, digits: Digits, metric: str = "l1") -> PixelSimilarity:
        _check_metric(metric)
        return cls(ideal_digits(digits), digits.classes, metric)

    def distances(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 28, 28) uint8 or float images -> (N, C) distances to each ideal digit."""
        floats = images.float() / 255 if images.dtype == torch.uint8 else images
        return distance_table(floats, self.ideals, self.metric)

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """(N,) int64 index of the nearest ideal digit."""
        return self.distances(images).argmin(1)
