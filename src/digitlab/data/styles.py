"""Handwriting styles MNIST has few of, drawn onto its digits: to try learning from corrections.

Many people write a 7 the continental way, with a bar across the stem (and often a serif down
from the top bar's left end); MNIST, written in the US, has few such 7s, and a model trained on it
reads many of them as 2, 4 or 9. `continental_sevens` draws both strokes onto real 7s, so that a
test or a benchmark can show a model learning the style from a few corrections
(`digitlab train --data my-digits --init RUN`).
"""

from __future__ import annotations

import torch

STROKE = 3  # pixels: MNIST's strokes at 28x28
BAR_HALF = 8  # the bar reaches this far either side of the stem
SERIF = 8  # pixels down from the top bar


def continental_sevens(images: torch.Tensor) -> torch.Tensor:
    """(N, 28, 28) uint8 7s -> a copy with a bar across the stem at mid-height and a serif down from
    the top bar's left end, both 3-pixel strokes of full ink (255)."""
    out = images.clone()
    for image in out:  # (28, 28) uint8, a view into out
        rows = (image > 128).any(1).nonzero().flatten()
        if len(rows) == 0:
            continue
        top, middle = int(rows.min()), int(rows.min() + rows.max()) // 2 + 1
        stem = (image[middle - 1 : middle + 2] > 128).any(0).nonzero().flatten()
        centre = int(stem.float().mean()) if len(stem) else 14
        image[middle - 1 : middle - 1 + STROKE, max(0, centre - BAR_HALF) : centre + BAR_HALF + 1] = 255
        left = int((image[top : top + STROKE] > 128).any(0).nonzero().flatten().min())
        image[top : top + SERIF, left : left + STROKE] = 255
    return out
