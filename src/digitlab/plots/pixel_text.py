"""An image as numbers: the book's pixel DataFrame with `background_gradient('Greys')`.

In a terminal each pixel is its value on a gray cell (white = 0, black = 255); piped to a
file it is the plain table of numbers (`pixel_text`); `plots.pixels.plot_pixel_table` draws the same
table as a picture. Crops: anything `digitlab.reading.crops.resolve_crop` takes ("top-left", "4:15,4:22").
"""

from __future__ import annotations

import sys
from typing import TextIO

import torch

from ..errors import DigitlabError
from ..reading.crops import Crop, crop_ranges


def _check_image(image: torch.Tensor) -> None:
    if image.dtype != torch.uint8 or image.ndim != 2:
        raise DigitlabError(f"expected a (H, W) uint8 image, got {tuple(image.shape)} {image.dtype}")


def pixel_text(image: torch.Tensor, crop: str | Crop | None = None, title: str = "") -> str:
    """The crop's values as plain text: a header of column indices, then each row with its index."""
    _check_image(image)
    rows, cols = crop_ranges(crop, tuple(image.shape))
    lines = [title] if title else []
    lines.append("    " + "".join(f"{c:>4}" for c in cols))
    lines += [f"{r:>3} " + "".join(f"{int(image[r, c]):>4}" for c in cols) for r in rows]
    return "\n".join(lines)


def _cell_style(value: int) -> str:
    shade = 255 - value  # Greys: 0 is white, 255 is black
    ink = "black" if shade > 140 else "white"
    return f"{ink} on rgb({shade},{shade},{shade})"


def print_pixels(
    image: torch.Tensor,
    crop: str | Crop | None = None,
    title: str = "",
    file: TextIO | None = None,
    color: bool | None = None,
) -> None:
    """Print a (28, 28) uint8 image as a shaded table of its values, with row/column indices.

    color: shade the cells (default: when `file` is a terminal); without it, `pixel_text`.
    """
    _check_image(image)
    file = file or sys.stdout
    color = file.isatty() if color is None else color
    if not color:
        print(pixel_text(image, crop, title), file=file)
        return
    from rich.console import Console
    from rich.text import Text

    rows, cols = crop_ranges(crop, tuple(image.shape))
    console = Console(
        file=file, width=max(4 + 4 * len(cols), 20), force_terminal=True, color_system="truecolor", highlight=False
    )
    if title:
        console.print(title)
    console.print(Text("    " + "".join(f"{c:>4}" for c in cols)), style="dim")
    for r in rows:
        line = Text(f"{r:>3} ", style="dim")
        for c in cols:
            value = int(image[r, c])
            line.append(f"{value:>4}", style=_cell_style(value))
        console.print(line)
