"""What every figure shares: a Figure that carries its numbers, shows inline once in Jupyter, saves a PNG.

No pyplot and no backend: figures are `matplotlib.figure.Figure`s, so importing digitlab never
changes a notebook's or a script's matplotlib state, and nothing is kept alive after use.
Figures are sized as `ncols x nrows` panels of `panel` inches and saved at a fixed `DPI`
without a tight bounding box, so a figure's pixel size is known in advance:
(ncols * panel_w * DPI, nrows * panel_h * DPI). Tests rely on that.

In a Jupyter kernel a figure made by a plot function (no `path`, no `ax`) is displayed as soon as
it is finished, so the book's `show_image(mean3);` shows a picture despite its semicolon;
`_ipython_display_` then shows it again only if it changed since. Outside a kernel, never.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..core.notebook import in_kernel
from ..errors import DigitlabError

DPI = 100  # dots per inch of every saved PNG: a 3-inch panel is 300 pixels
AnyFigure = TypeVar("AnyFigure", bound=Figure)


class DigitlabFigure(Figure):
    """A Figure with `values`: the numbers it shows (read them, e.g. `fig.values["3"]["l1"]`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.values: dict[Any, Any] = {}  # keys: names, or learning rates (plot_sgd_quadratic)
        self.shown = False  # published to a Jupyter front end at least once

    def png(self) -> bytes:
        """The figure as PNG bytes at DPI (the same pixels `path=` saves)."""
        buffer = io.BytesIO()
        self.savefig(buffer, dpi=DPI, format="png")
        return buffer.getvalue()

    def _ipython_display_(self) -> None:
        """IPython's hook for `display(fig)` and a cell's last value: show once, again only when changed."""
        if not in_kernel():
            print(repr(self))  # terminal IPython: the text a plain value gets
            return
        if self.shown and not self.stale:
            return
        from IPython.display import publish_display_data

        publish_display_data({"image/png": self.png(), "text/plain": repr(self)})
        self.shown = True
        self.stale = False  # drawing clears it already; explicit, since "unchanged" rests on it


def new_figure(
    nrows: int = 1, ncols: int = 1, panel: tuple[float, float] = (3.0, 3.0), figsize: tuple[float, float] | None = None
) -> tuple[DigitlabFigure, np.ndarray]:
    """A DigitlabFigure and its axes as an (nrows, ncols) array; panel: (width, height) inches of each.

    figsize (inches) overrides nrows x ncols panels. Constrained layout keeps titles and
    colorbars inside the fixed canvas.
    """
    size = figsize or (ncols * panel[0], nrows * panel[1])
    fig = DigitlabFigure(figsize=size, dpi=DPI, layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def panel_axes(
    ax: Axes | None, panel: tuple[float, float] = (3.0, 3.0), figsize: tuple[float, float] | None = None
) -> tuple[Figure, Axes, bool]:
    """(figure, axes, own) for a one-panel plot: the caller's `ax` and its figure, or a new figure (own=True)."""
    if ax is not None:
        return cast(Figure, ax.figure), ax, False  # the top figure (not a SubFigure) for the usual axes
    fig, axes = new_figure(1, 1, panel, figsize)
    return fig, axes[0, 0], True


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write `fig` to `path` as a PNG at DPI (folders made as needed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=DPI, format="png")
    except OSError as e:
        raise DigitlabError(f"{path}: cannot write the picture ({e})") from None
    return path


def finish(
    fig: AnyFigure, path: str | Path | None = None, values: dict[Any, Any] | None = None, own: bool = True
) -> AnyFigure:
    """The last step of every plot function; returns `fig`.

    values: the numbers the figure shows, kept as `fig.values` (own figures only: a caller's
    figure from `ax=` may hold other plots). path: save a PNG there. An own figure with no path,
    inside a Jupyter kernel, is displayed now (once; see the module's docstring).
    """
    if own and isinstance(fig, DigitlabFigure) and values is not None:
        fig.values = values
    if path is not None:
        save_png(fig, path)
    elif own and in_kernel():
        from IPython.display import display

        display(fig)
    return fig


def image_axis(
    ax: Axes,
    image: torch.Tensor | np.ndarray,
    title: str = "",
    cmap: str = "Greys",
    vmin: float | None = None,
    vmax: float | None = None,
    **imshow: Any,
) -> Any:
    """Draw a (H, W) image on `ax` with no ticks or frame; returns the AxesImage (for colorbars).

    `Greys` shows MNIST polarity as printed: 0 is white paper, the maximum is black ink.
    """
    values = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    imshow.setdefault("interpolation", "nearest")
    shown = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, **imshow)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=8)
    return shown


def hide_unused(axes: np.ndarray, used: int) -> None:
    """Hide the grid's panels after the first `used` (a 3x3 grid for 7 images: 2 blank)."""
    for ax in axes.flat[used:]:
        ax.set_visible(False)
