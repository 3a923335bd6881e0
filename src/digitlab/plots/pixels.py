"""An image as a table of numbers: HTML for Jupyter, text for a terminal, a PNG for pages.

The book's `pd.DataFrame(t[4:15, 4:22]).style.background_gradient('Greys')`, without pandas:
`PixelTable(im3, "4:15,4:22")` or `PixelTable(im3, "top-left")` in a notebook cell.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..errors import DigitlabError
from ..reading.crops import Crop, crop_ranges, describe_crop, resolve_crop
from .common import finish, panel_axes
from .pixel_text import pixel_text

CELL = 0.42  # inches per pixel cell in the PNG: room for three digits at 7 pt


def _uint8_image(image: torch.Tensor | np.ndarray) -> torch.Tensor:
    image = torch.as_tensor(image)
    if image.dtype != torch.uint8 or image.ndim != 2:
        raise DigitlabError(f"expected a (H, W) uint8 image, got {tuple(image.shape)} {image.dtype}")
    return image


def _shade(rgba: tuple[float, ...]) -> str:
    """Background and text colour as pandas' background_gradient picks them (WCAG luminance < 0.408 -> light text)."""
    linear = [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in rgba[:3]]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    red, green, blue = (round(255 * v) for v in rgba[:3])
    return f"background-color:rgb({red},{green},{blue});color:{'#f1f1f1' if luminance < 0.408 else '#000000'}"


def pixel_table_html(image: torch.Tensor | np.ndarray, crop: str | Crop | None = None) -> str:
    """The book's `df.style.background_gradient('Greys')` as self-contained HTML (inline styles only).

    Shading uses matplotlib's Greys on a fixed 0..255 scale (pandas scales to the data's range;
    fixed is what makes a crop of background stay white). Text turns white on dark cells.
    """
    from matplotlib import colormaps

    image, greys = _uint8_image(image), colormaps["Greys"]  # Greys: 0 -> white, 1 -> black
    rows, cols = crop_ranges(crop, tuple(image.shape))
    cell = "padding:1px 3px;text-align:right;font-family:monospace;font-size:7pt"
    lines = [
        '<table style="border-collapse:collapse">',
        "<tr><th></th>" + "".join(f'<th style="{cell}">{c}</th>' for c in cols) + "</tr>",
    ]
    for r in rows:
        values = [int(image[r, c]) for c in cols]
        tds = "".join(f'<td style="{cell};{_shade(greys(v / 255))}">{v}</td>' for v in values)
        lines.append(f'<tr><th style="{cell}">{r}</th>{tds}</tr>')
    return "\n".join(lines + ["</table>"])


class PixelTable:
    """An image's pixel values: shaded HTML in Jupyter, a plain table with indices in a terminal.

    image: (H, W) uint8 (tensor or numpy); crop: see digitlab.reading.crops.resolve_crop.
    """

    def __init__(self, image: torch.Tensor | np.ndarray, crop: str | Crop | None = None) -> None:
        self.image = _uint8_image(image)
        self.crop = resolve_crop(crop, tuple(self.image.shape))
        self.description = describe_crop(crop, tuple(self.image.shape))  # e.g. "top-left: rows 0-13, columns 0-13"

    @property
    def values(self) -> torch.Tensor:
        """The cropped pixels, (rows, cols) uint8."""
        return self.image[self.crop]

    def _repr_html_(self) -> str:
        return pixel_table_html(self.image, self.crop)

    def __str__(self) -> str:
        return pixel_text(self.image, self.crop)

    def __repr__(self) -> str:
        return f"PixelTable({self.description})\n{pixel_text(self.image, self.crop)}"

    def save_png(self, path: str | Path, title: str = "") -> Figure:
        """The same table as a picture (plot_pixel_table)."""
        return plot_pixel_table(self.image, self.crop, title, path=path)


def plot_pixel_table(
    image: torch.Tensor | np.ndarray,
    crop: str | Crop | None = None,
    title: str = "",
    *,
    ax: Axes | None = None,
    path: str | Path | None = None,
) -> Figure:
    """The crop's values written on their shade (Greys, fixed 0..255), row and column indices on the axes.

    `.values`: {"pixels": (rows, cols) int array, "rows": row indices, "cols": column indices}.
    The figure is CELL inches a pixel (at least 3 inches a side).
    """
    image = _uint8_image(image)
    rows, cols = crop_ranges(crop, tuple(image.shape))
    values = image[rows.start : rows.stop : rows.step, cols.start : cols.stop : cols.step].numpy()
    size = (max(3.0, CELL * len(cols) + 1), max(3.0, CELL * len(rows) + 1))
    fig, ax, own = panel_axes(ax, figsize=size)
    ax.imshow(values, cmap="Greys", vmin=0, vmax=255)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(
                j,
                i,
                str(values[i, j]),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if values[i, j] > 115 else "black",
            )
    ax.set_xticks(range(len(cols)), [str(c) for c in cols], fontsize=7)
    ax.set_yticks(range(len(rows)), [str(r) for r in rows], fontsize=7)
    ax.tick_params(length=0)
    if title:
        ax.set_title(title)
    return finish(fig, path, {"pixels": values.astype(int), "rows": list(rows), "cols": list(cols)}, own)
