"""Figures for a trained model: confusion matrix, top losses, a linear model's weights.

Inputs are what `digitlab.artifacts` and `digitlab.predict` compute (metrics.accuracy_report's confusion, a Predictor's
top losses, a model); each plot function returns a Figure whose `.values` holds the numbers its
titles show. Nothing here runs a model.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import nn

from ..errors import DigitlabError
from ..models import Linear
from .common import DigitlabFigure, finish, hide_unused, image_axis, new_figure, panel_axes


def plot_confusion_matrix(
    confusion: list[list[int]], classes: tuple[str, ...], *, ax: Axes | None = None, path: str | Path | None = None
) -> Figure:
    """Counts in cells (rows actual, columns predicted); `.values`: {"accuracy": trace / sum, "counts"}."""
    counts = np.asarray(confusion, dtype=np.int64)  # (C, C)
    if counts.shape != (len(classes), len(classes)):
        raise DigitlabError(f"confusion matrix {counts.shape} does not match {len(classes)} classes")
    total = int(counts.sum())
    if total == 0:
        raise DigitlabError("empty confusion matrix: no predictions to show")
    accuracy = float(np.trace(counts) / total)
    side = max(3.0, 0.45 * len(classes) + 1.5)  # inches: room for 4-digit counts in 10x10
    fig, ax, own = panel_axes(ax, (side, side))
    ax.imshow(counts, cmap="Blues")
    threshold = counts.max() / 2  # white text on the darker half of the cells
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(
                j,
                i,
                str(counts[i, j]),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if counts[i, j] > threshold else "black",
            )
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(f"accuracy {accuracy:.4f} ({int(np.trace(counts))}/{total})", fontsize=9)
    return finish(fig, path, {"accuracy": accuracy, "counts": counts.tolist()}, own)


def plot_top_losses(
    items: list[dict[str, Any]], images: torch.Tensor, classes: tuple[str, ...], *, path: str | Path | None = None
) -> DigitlabFigure:
    """A grid of the top-loss digits titled "predicted/actual/loss/probability" (fastai's order).

    items: `Predictor.top_losses(digits).items()`, each drawn from images[item["index"]].
    The loss's name (items' "loss_name") is in the figure's title. `.values`: {"titles": in the
    items' order, "loss_name"}.
    """
    if not items:
        raise DigitlabError("no items to plot")
    images = torch.as_tensor(images)
    ncols = math.ceil(math.sqrt(len(items)))
    nrows = math.ceil(len(items) / ncols)
    titles = [
        f"{classes[it['predicted']]}/{classes[it['actual']]}/{it['loss']:.2f}/{it['probability']:.2f}" for it in items
    ]
    name = items[0].get("loss_name", "loss")
    fig, axes = new_figure(nrows, ncols, panel=(1.6, 1.8))
    hide_unused(axes, len(items))
    for ax, item, title in zip(axes.flat, items, titles):
        image_axis(ax, images[item["index"]], title, vmin=0, vmax=255)
    fig.suptitle(f"predicted/actual/{name}/probability", fontsize=8)
    return finish(fig, path, {"titles": titles, "loss_name": name})


def plot_linear_weights(
    model: nn.Module, classes: tuple[str, ...], *, path: str | Path | None = None
) -> DigitlabFigure:
    """Each output's 784 weights as a 28x28 map: red pixels push towards that class, blue away.

    model: digitlab's Linear or a plain nn.Linear(784, n_out).

    One colour scale for all maps, centred at 0, so maps compare. A binary model (one output,
    the logit of the first class) gives one map. `.values`: {"n_maps", "titles", "limit"}.
    """
    layer = model.linear if isinstance(model, Linear) else model
    if not isinstance(layer, nn.Linear) or layer.in_features != 28 * 28:
        raise DigitlabError(f"weight maps need a linear model of 784 inputs, got {type(model).__name__}")
    weights = layer.weight.detach().cpu().reshape(-1, 28, 28)  # (n_out, 28, 28)
    n_out = len(weights)
    if n_out != 1 and n_out != len(classes):
        raise DigitlabError(f"model has {n_out} outputs but there are {len(classes)} classes")
    if n_out == 1:
        rest = ", ".join(classes[1:])
        titles = [f"{classes[0]} (vs {rest})" if rest else classes[0]]
    else:
        titles = list(classes)
    limit = float(weights.abs().max()) or 1.0  # symmetric range: white is exactly 0
    ncols = min(n_out, 5)
    fig, axes = new_figure(math.ceil(n_out / ncols), ncols, panel=(2.0, 2.0))
    hide_unused(axes, n_out)
    for ax, w, title in zip(axes.flat, weights, titles):
        shown = image_axis(ax, w, title, cmap="RdBu_r", vmin=-limit, vmax=limit)
    fig.colorbar(shown, ax=axes.ravel().tolist(), shrink=0.8)
    return finish(fig, path, {"n_maps": n_out, "titles": titles, "limit": limit})
