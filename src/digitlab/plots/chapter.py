"""The chapter's pixel-similarity figures: ideal digits, one digit against each ideal, where the baseline errs.

Each function returns a Figure whose `.values` holds the numbers it shows, to check against the
library (`fig.values["3"]["l1"]`); `path=` also saves it as a PNG. The pixel table lives in
`plots.pixels`, activations and SGD in `plots.sgd`; their names are importable from here too.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..baseline import PixelSimilarity, mnist_distance
from ..data.digits import Digits
from .common import DigitlabFigure, finish, hide_unused, image_axis, new_figure
from .pixels import PixelTable, pixel_table_html, plot_pixel_table
from .sgd import plot_activations, plot_roller_coaster, plot_sgd_quadratic, roller_coaster, sgd_quadratic

__all__ = [
    # re-exported from their modules, where they lived before
    "PixelTable",
    "pixel_table_html",
    "plot_activations",
    "plot_against_ideals",
    "plot_distance_histograms",
    "plot_ideal_digits",
    "plot_pixel_table",
    "plot_roller_coaster",
    "plot_sgd_quadratic",
    "roller_coaster",
    "sgd_quadratic",
]


IDEALS_A_ROW = 5


def plot_ideal_digits(
    ideals: torch.Tensor, classes: tuple[str, ...], *, path: str | Path | None = None
) -> DigitlabFigure:
    """The mean image of each class side by side; `.values`: {class: mean ink} (shown in the titles).

    ideals: (C, 28, 28) floats in [0, 1], drawn on a fixed 0..1 scale.
    """
    ink = {name: float(ideal.mean()) for name, ideal in zip(classes, ideals)}
    # at most IDEALS_A_ROW a row: ten in one row, scaled to a page's width, had unreadable titles
    ncols = min(len(classes), IDEALS_A_ROW)
    fig, axes = new_figure(math.ceil(len(classes) / ncols), ncols, panel=(1.6, 1.8))
    for ax, name, ideal in zip(axes.flat, classes, ideals):
        image_axis(ax, ideal, f"ideal {name}\nink {ink[name]:.3f}", vmin=0, vmax=1)
    hide_unused(axes, len(classes))
    return finish(fig, path, ink)


def plot_against_ideals(
    image: torch.Tensor | np.ndarray,
    ideals: torch.Tensor,
    classes: tuple[str, ...],
    *,
    title: str | None = None,
    path: str | Path | None = None,
) -> DigitlabFigure:
    """One row per class: image, ideal, image - ideal, |difference|, difference squared.

    L1 is the mean of the |difference| panel, RMSE the root of the squared panel's mean:
    both come from baseline.mnist_distance. `.values`: {class: {"l1": ..., "rmse": ...}}.
    title: a line above the grid (e.g. whether the baseline classifies this digit right).
    """
    image = torch.as_tensor(image)  # uint8 pixels are scaled to [0, 1]; floats are taken as scaled already
    x = image.float() / 255 if image.dtype == torch.uint8 else image.float()  # (28, 28)
    distances: dict[str, dict[str, float]] = {}
    fig, axes = new_figure(len(classes), 5, panel=(1.6, 1.8))
    for row, name, ideal in zip(axes, classes, ideals):
        diff = x - ideal  # (28, 28) in [-1, 1]
        l1, rmse = (float(mnist_distance(x, ideal, m)) for m in ("l1", "rmse"))
        distances[name] = {"l1": l1, "rmse": rmse}
        image_axis(row[0], x, "image", vmin=0, vmax=1)
        image_axis(row[1], ideal, f"ideal {name}", vmin=0, vmax=1)
        image_axis(row[2], diff, "image - ideal", cmap="RdBu_r", vmin=-1, vmax=1)
        image_axis(row[3], diff.abs(), f"|diff|: L1 {l1:.4f}", vmin=0, vmax=1)
        image_axis(row[4], diff.square(), f"diff²: RMSE {rmse:.4f}", vmin=0, vmax=1)
    if title:
        fig.suptitle(title, fontsize=9)
    return finish(fig, path, distances)


def plot_distance_histograms(
    model: PixelSimilarity, digits: Digits, *, path: str | Path | None = None
) -> DigitlabFigure:
    """For each true class, histograms of its digits' distances to every ideal digit.

    Where a class's own histogram overlaps another's, the baseline confuses the two. `.values`:
    {true class: {"n": count, "accuracy": share nearest to their own ideal or None,
    "mean": {ideal class: mean distance or None}}}; accuracy and means are in the titles/legend.
    """
    table = model.distances(digits.images)  # (N, C) distances
    predicted = table.argmin(1)
    n_classes = len(model.classes)
    ncols = min(n_classes, 5)
    bins = np.linspace(float(table.min()), float(table.max()) + 1e-6, 31) if len(table) else 30  # shared by all
    result: dict[str, dict[str, Any]] = {}
    fig, axes = new_figure(math.ceil(n_classes / ncols), ncols, panel=(3.2, 2.6))
    hide_unused(axes, n_classes)
    for true, (ax, name) in enumerate(zip(axes.flat, model.classes)):
        mine = digits.labels == true
        rows, n = table[mine], int(mine.sum())  # (n, C) distances of this class's digits
        accuracy = float((predicted[mine] == true).float().mean()) if n else None
        means = {ideal: float(rows[:, j].mean()) if n else None for j, ideal in enumerate(model.classes)}
        result[name] = {"n": n, "accuracy": accuracy, "mean": means}
        for j, ideal in enumerate(model.classes if n else ()):
            own = j == true  # filled: the distance to its own ideal, which should be the smallest
            ax.hist(
                rows[:, j].numpy(),
                bins=bins,
                histtype="stepfilled" if own else "step",
                color=f"C{j % 10}",
                alpha=0.5 if own else 0.9,
                linewidth=2 if own else 1,
                label=f"to {ideal} ({means[ideal]:.3f})",
            )
        where = f"{accuracy:.0%} nearest their own ideal" if n else "no images"
        ax.set_title(f"actual {name} (n={n}): {where}", fontsize=8)
        ax.set_xlabel(f"{model.metric} distance", fontsize=7)
        ax.tick_params(labelsize=6)
        if n:
            ax.legend(fontsize=6)
    return finish(fig, path, result)
