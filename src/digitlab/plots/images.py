"""fastai's `show_image` / `show_images`: look at a digit (or many) in one call.

Accepts what the chapter handles: (28, 28) uint8 or float tensors, (1, 28, 28), numpy arrays,
PIL images, (3, H, W) or (H, W, 3) colour. MNIST is drawn as printed, ink dark on white paper
(`Greys`), on a fixed scale: uint8 on 0..255, floats in [0, 1] on 0..1, so a faint mean
digit looks faint. Floats outside [0, 1] (e.g. normalised inputs) use their own range.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..errors import DigitlabError
from ..reading.crops import Crop, resolve_crop
from .common import DigitlabFigure, finish, hide_unused, image_axis, new_figure, panel_axes

ImageLike = Any  # torch.Tensor | np.ndarray | PIL.Image.Image


def as_array(image: ImageLike) -> np.ndarray:
    """(H, W) or (H, W, 3|4) numpy from a tensor, array or PIL image; a leading 1 or 3 channel axis is moved."""
    if hasattr(image, "getbands"):  # a PIL image
        image = np.asarray(image.convert("L") if image.mode in ("1", "P", "I", "I;16", "F") else image)
    elif isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)  # (C, H, W) as torch stores it -> (H, W, C) as matplotlib draws it
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2 and not (array.ndim == 3 and array.shape[-1] in (3, 4)):
        raise DigitlabError(f"show_image wants one image, (H, W), (1, H, W) or colour, got shape {array.shape}")
    return array


def _scale(array: np.ndarray) -> tuple[float, float]:
    """The fixed (vmin, vmax) for a dtype: 0..255 for integers, 0..1 for floats in [0, 1], else the data's range."""
    if array.dtype == np.bool_ or array.size == 0:
        return 0.0, 1.0
    if np.issubdtype(array.dtype, np.integer):
        return 0.0, 255.0 if array.max() <= 255 else float(array.max())
    low, high = float(np.nanmin(array)), float(np.nanmax(array))
    return (0.0, 1.0) if low >= 0.0 and high <= 1.0 else (low, high if high > low else low + 1)


def _draw(
    ax: Axes, image: ImageLike, title: str | None, cmap: str, crop: str | Crop | None, imshow: dict[str, Any]
) -> dict[str, Any]:
    array = as_array(image)
    if crop is not None:
        rows, cols = resolve_crop(crop, array.shape[:2])
        array = array[rows, cols]
    vmin, vmax = _scale(array)
    imshow = {"vmin": vmin, "vmax": vmax, **imshow}  # the caller's vmin/vmax win
    if array.ndim == 3:  # colour: matplotlib ignores cmap and the scale; it wants uint8 or floats in 0..1
        imshow.pop("vmin"), imshow.pop("vmax")
    image_axis(ax, array, title or "", cmap=cmap, **imshow)
    return {"image": array, "vmin": imshow.get("vmin"), "vmax": imshow.get("vmax"), "title": title}


def show_image(
    t: ImageLike,
    ax: Axes | None = None,
    title: str | None = None,
    cmap: str = "Greys",
    crop: str | Crop | None = None,
    figsize: tuple[float, float] | None = None,
    *,
    path: str | Path | None = None,
    **imshow: Any,
) -> Figure:
    """Draw one image without axes; returns the figure (the caller's, when `ax` is given).

    crop: "top-left", "centre", "4:15,4:22", ... (digitlab.reading.crops.resolve_crop). figsize:
    inches (default 3 x 3). imshow: passed to matplotlib's imshow (vmin, vmax, interpolation, ...).
    `.values`: {"image": the array drawn, "vmin", "vmax", "title"}.
    """
    fig, ax, own = panel_axes(ax, (3.0, 3.0), figsize)
    values = _draw(ax, t, title, cmap, crop, imshow)
    return finish(fig, path, values, own)


def show_images(
    ts: Sequence[ImageLike] | torch.Tensor | np.ndarray,
    nrows: int | None = 1,
    ncols: int | None = None,
    titles: Sequence[str] | None = None,
    cmap: str = "Greys",
    crop: str | Crop | None = None,
    figsize: tuple[float, float] | None = None,
    *,
    path: str | Path | None = None,
    **imshow: Any,
) -> DigitlabFigure:
    """Draw images in a grid of nrows x ncols (ncols from nrows when None, and the other way round).

    ts: a list of images or a stacked (N, H, W) tensor/array. Unused panels stay blank.
    `.values`: {"n": number of images, "nrows", "ncols", "titles", "vmin", "vmax" (per image)}.
    """
    images = list(ts)
    if not images:
        raise DigitlabError("show_images got no images")
    if titles is not None and len(titles) != len(images):
        raise DigitlabError(f"{len(images)} images but {len(titles)} titles")
    if ncols is None:
        nrows = max(1, min(nrows or 1, len(images)))
        ncols = math.ceil(len(images) / nrows)
    else:
        nrows = math.ceil(len(images) / ncols)
    panel = (1.6, 1.8 if titles else 1.6)  # inches per image: room for a title line
    fig, axes = new_figure(nrows, ncols, panel, figsize)
    hide_unused(axes, len(images))
    drawn = [
        _draw(ax, image, titles[i] if titles else None, cmap, crop, dict(imshow))
        for i, (ax, image) in enumerate(zip(axes.flat, images))
    ]
    values = {
        "n": len(images),
        "nrows": nrows,
        "ncols": ncols,
        "titles": list(titles) if titles else None,
        "vmin": [d["vmin"] for d in drawn],
        "vmax": [d["vmax"] for d in drawn],
    }
    return finish(fig, path, values)
