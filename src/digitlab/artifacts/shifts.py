"""Test-time augmentation as plain tensors: each image as it is and shifted by a pixel, scores averaged.

A digit written a pixel to the left is the same digit; a model trained with random shifts
scores each copy a little differently, and the average of the copies' logits is steadier
than any one of them. The cost is one forward pass per copy (5x with the default shifts).
All copies of a batch are made at once with pad-and-slice (no Python per image).
Inference uses these functions; the training loop's callback is `digitlab.train.tta.TTACB`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DigitlabError

# (dx, dy) in pixels: the image itself and one pixel right, left, down and up
DEFAULT_SHIFTS: tuple[tuple[int, int], ...] = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))


def shifted(x: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """Images (..., H, W) moved dx pixels right and dy down; uncovered pixels take each image's minimum.

    The minimum is the background whatever the normalisation (0 for /255 pixels, -mean/std after it).
    Flat (N, 784) rows, as the linear models take them, are treated as 28x28 images.
    """
    if dx == 0 and dy == 0:
        return x
    if x.dim() == 2 and x.shape[1] == 28 * 28:
        return shifted(x.reshape(-1, 28, 28), dx, dy).reshape(x.shape)
    h, w, pad = x.shape[-2], x.shape[-1], max(abs(dx), abs(dy))
    background = x.amin(dim=(-2, -1), keepdim=True)
    padded = F.pad(x - background, (pad, pad, pad, pad))  # zeros around the image, as background
    top, left = pad - dy, pad - dx
    return padded[..., top : top + h, left : left + w] + background


def tta_outputs(
    model: nn.Module,
    x: torch.Tensor,
    shifts: Sequence[tuple[int, int]] = DEFAULT_SHIFTS,
    preds: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean of model(shifted(x)) over `shifts`: (N, n_out). `preds`: model(x), when already computed."""
    total: torch.Tensor | None = None
    for dx, dy in shifts:
        out = preds if (dx, dy) == (0, 0) and preds is not None else model(shifted(x, dx, dy))
        total = out.float() if total is None else total + out.float()
    if total is None:
        raise DigitlabError("tta_outputs needs at least one shift, e.g. shifts=[(0, 0)]")
    return total / len(shifts)
