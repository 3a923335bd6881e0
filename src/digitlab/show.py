"""An image as numbers: the book's pixel DataFrame with `background_gradient('Greys')`.

In a terminal each pixel is its value on a gray cell (white = 0, black = 255); piped to a
file it is the plain table of numbers. `save_pixel_png` draws the same table as a picture.
"""

from __future__ import annotations

import sys
from typing import TextIO

import torch

from .errors import DigitlabError

Crop = tuple[slice, slice]


def parse_crop(text: str | None) -> Crop:
    """'4:15,4:22' -> (slice(4, 15), slice(4, 22)); None -> the whole image."""
    if not text:
        return slice(None), slice(None)
    try:
        rows, cols = text.split(",")
        return tuple(slice(*[int(v) if v else None for v in part.split(":")]) for part in (rows, cols))  # type: ignore[return-value]
    except ValueError:
        raise DigitlabError(f"bad crop {text!r}: write ROWS,COLS like 4:15,4:22") from None


def _cell_style(value: int) -> str:
    shade = 255 - value  # Greys: 0 is white, 255 is black
    ink = "black" if shade > 140 else "white"
    return f"{ink} on rgb({shade},{shade},{shade})"


def print_pixels(image: torch.Tensor, crop: Crop = (slice(None), slice(None)), title: str = "",
                 file: TextIO | None = None, color: bool | None = None) -> None:
    """Print a (28, 28) uint8 image as a shaded table of its values, with row/column indices."""
    from rich.console import Console
    from rich.text import Text

    if image.dtype != torch.uint8 or image.ndim != 2:
        raise DigitlabError(f"expected a (H, W) uint8 image, got {tuple(image.shape)} {image.dtype}")
    rows = range(*crop[0].indices(image.shape[0]))
    cols = range(*crop[1].indices(image.shape[1]))
    file = file or sys.stdout
    color = file.isatty() if color is None else color
    width = 4 + 4 * len(cols)
    console = Console(file=file, width=max(width, 20), force_terminal=color, no_color=not color,
                      color_system="truecolor" if color else None, highlight=False)
    if title:
        console.print(title)
    header = Text("    " + "".join(f"{c:>4}" for c in cols))
    console.print(header, style="dim")
    for r in rows:
        line = Text(f"{r:>3} ", style="dim")
        for c in cols:
            value = int(image[r, c])
            line.append(f"{value:>4}", style=_cell_style(value) if color else "")
        console.print(line)


def save_pixel_png(image: torch.Tensor, path: str, crop: Crop = (slice(None), slice(None)), title: str = "") -> None:
    """The image's values as a shaded table drawn into a PNG (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = range(*crop[0].indices(image.shape[0]))
    cols = range(*crop[1].indices(image.shape[1]))
    values = image[rows.start:rows.stop:rows.step, cols.start:cols.stop:cols.step].numpy()
    cell = 0.42  # inches per pixel cell: room for three digits at 7 pt
    fig, ax = plt.subplots(figsize=(max(3.0, cell * len(cols) + 1), max(3.0, cell * len(rows) + 1)))
    ax.imshow(values, cmap="Greys", vmin=0, vmax=255)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(j, i, str(values[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if values[i, j] > 115 else "black")
    ax.set_xticks(range(len(cols)), [str(c) for c in cols], fontsize=7)
    ax.set_yticks(range(len(rows)), [str(r) for r in rows], fontsize=7)
    ax.tick_params(length=0)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
