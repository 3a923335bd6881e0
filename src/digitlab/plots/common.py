"""The two things every figure needs: a saved-and-closed PNG figure, and a bare digit axis.

Figures are sized as `ncols x nrows` panels of `panel` inches and saved at a fixed `DPI`
without a tight bounding box, so a figure's pixel size is known in advance:
(ncols * panel_w * DPI, nrows * panel_h * DPI). Tests rely on that.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

DPI = 100  # dots per inch of every saved PNG: a 3-inch panel is 300 pixels


@contextmanager
def saved_figure(path: str | Path, nrows: int = 1, ncols: int = 1,
                 panel: tuple[float, float] = (3.0, 3.0)) -> Iterator[tuple[Any, np.ndarray]]:
    """Yield (figure, axes as an (nrows, ncols) array); on exit save it as a PNG at DPI.

    The figure is closed whatever happens, so a failing plot never leaks pyplot state
    (pyplot keeps every open figure alive until it is closed). Uses the Agg backend: no window.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # constrained layout keeps titles and colorbars inside the fixed canvas
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * panel[0], nrows * panel[1]),
                             squeeze=False, layout="constrained")
    try:
        yield fig, axes
        fig.savefig(path, dpi=DPI, format="png")
    finally:
        plt.close(fig)


def image_axis(ax: Any, image: torch.Tensor | np.ndarray, title: str = "", cmap: str = "Greys",
               vmin: float | None = None, vmax: float | None = None) -> Any:
    """Draw a (H, W) image on `ax` with no ticks or frame; returns the AxesImage (for colorbars).

    `Greys` shows MNIST polarity as printed: 0 is white paper, the maximum is black ink.
    """
    values = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    shown = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=8)
    return shown
