"""A line of digits found in a picture, as a line reader sees it: (32, W) uint8 ink on 0, the line's
span scaled to data.lines.HIGH px tall (as the tallest digits of the training lines), MARGIN px of
background left and right, W a multiple of the reader's 4 px columns and at least the training lines'
width; and the way back from the reader's columns to the picture's pixels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..data.lines import COLUMN, HIGH, LINE_HEIGHT, LINE_WIDTH

MARGIN = 4  # px of background left of a line's ink (training lines start 0-11 px in)


@dataclass(frozen=True)
class LinePicture:
    """One line of a picture, ready for a line reader."""

    picture: np.ndarray  # (LINE_HEIGHT, W) uint8, 0 = background
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the input's pixels, x1, y1 exclusive
    px_per_column: float  # input pixels per reader column

    def input_x(self, x: float) -> int:
        """Column x of the picture (px) -> x in the input's pixels."""
        return round(self.box[0] + (x - MARGIN) / COLUMN * self.px_per_column)


def line_picture(ink: np.ndarray, origin: tuple[int, int], scale: float) -> LinePicture:
    """ink: (h, w) float32 0..255, the line's box at the working resolution holding only its own marks (0
    elsewhere); origin: that box's y0, x0 there; scale: input pixels per working pixel."""
    h, w = ink.shape
    factor = HIGH / max(h, 1)  # line px per working px
    width = max(1, round(w * factor))
    resample = Image.Resampling.BOX if factor < 1 else Image.Resampling.BILINEAR
    patch = np.asarray(Image.fromarray(ink).resize((width, HIGH), resample))
    total = max(LINE_WIDTH, -(-(width + 2 * MARGIN) // COLUMN) * COLUMN)
    picture = np.zeros((LINE_HEIGHT, total), np.uint8)
    top = (LINE_HEIGHT - HIGH) // 2
    picture[top : top + HIGH, MARGIN : MARGIN + width] = np.rint(np.clip(patch, 0, 255))
    y0, x0 = origin
    in_input = (round(x0 * scale), round(y0 * scale), round((x0 + w) * scale), round((y0 + h) * scale))
    return LinePicture(picture, in_input, COLUMN / factor * scale)
