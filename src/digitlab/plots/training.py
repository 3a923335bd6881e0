"""Figures for training runs: loss curves, the recorder's per-batch loss, schedules, the lr finder.

Inputs are what the rest of digitlab produces (RecorderCB's history/lrs/losses, lr_find's
curve); each function returns a Figure whose `.values` holds the numbers its titles show.
Evaluation figures (confusion matrix, top losses, weight maps) live in `plots.evaluation`;
their names are importable from here too (the top losses themselves: `Predictor.top_losses`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..errors import DigitlabError
from .common import DigitlabFigure, finish, new_figure, panel_axes
from .evaluation import plot_confusion_matrix, plot_linear_weights, plot_top_losses

__all__ = [
    # re-exported from plots.evaluation, where they moved
    "is_constant",
    "plot_confusion_matrix",
    "plot_linear_weights",
    "plot_loss_curves",
    "plot_lr_find",
    "plot_lr_schedule",
    "plot_recorder_loss",
    "plot_top_losses",
]


def _floats(values: Any) -> list[float]:
    """Python floats from floats, 0-dim tensors (RecorderCB.losses) or a 1-d tensor/array."""
    if isinstance(values, (torch.Tensor, np.ndarray)):
        return [float(v) for v in values.reshape(-1).tolist()]
    return [float(v) for v in values]


def is_constant(lrs: Any, rtol: float = 1e-9) -> bool:
    """True when every learning rate is the same (a plain `fit`): a schedule panel would be a flat line."""
    values = _floats(lrs)
    return bool(values) and max(values) - min(values) <= rtol * max(abs(v) for v in values)


def plot_loss_curves(
    history: list[dict[str, Any]], metric: str = "batch_accuracy", *, path: str | Path | None = None
) -> DigitlabFigure:
    """Train and valid loss per epoch; the metric per epoch on a second panel.

    `.values`: {"epoch", "train_loss", "valid_loss", metric: lists per epoch}; the metric list is
    empty when the history has no such column.
    """
    if not history:
        raise DigitlabError("no epochs recorded: nothing to plot")
    curves: dict[str, list[float]] = {"epoch": [row.get("epoch", i + 1) for i, row in enumerate(history)]}
    for key in ("train_loss", "valid_loss", metric):
        curves[key] = [float(row[key]) for row in history if key in row]
    fig, axes = new_figure(1, 2, panel=(4.0, 3.0))
    loss_ax, metric_ax = axes[0]
    for key in ("train_loss", "valid_loss"):
        if curves[key]:
            loss_ax.plot(curves["epoch"], curves[key], "o-", markersize=3, label=key.replace("_", " "))
    loss_ax.set_xlabel("epoch")
    loss_ax.legend(fontsize=7)
    last = {k: curves[k][-1] for k in ("train_loss", "valid_loss") if curves[k]}
    loss_ax.set_title("final " + ", ".join(f"{k.split('_')[0]} {v:.4f}" for k, v in last.items()), fontsize=9)
    if curves[metric]:
        metric_ax.plot(curves["epoch"], curves[metric], "o-", color="C2", markersize=3)
        metric_ax.set_title(f"{metric}: final {curves[metric][-1]:.4f}", fontsize=9)
    else:
        metric_ax.set_title(f"no {metric} recorded", fontsize=9)
    metric_ax.set_xlabel("epoch")
    return finish(fig, path, curves)


def plot_recorder_loss(
    losses: Any,
    history: list[dict[str, Any]],
    n_batches_per_epoch: int | None = None,
    ax: Axes | None = None,
    path: str | Path | None = None,
) -> Figure:
    """fastai's `recorder.plot_loss`: the train loss of every batch as a line, the valid loss as a point per epoch.

    losses: RecorderCB.losses (0-dim tensors, one per training batch); history: RecorderCB.history.
    Epoch e's valid loss sits at the index of its last batch, (e + 1) * n_batches_per_epoch - 1;
    n_batches_per_epoch defaults to len(losses) / len(history). `.values`: {"batch", "train_loss",
    "epoch_end", "valid_loss"}.
    """
    train = _floats(losses)
    if not train:
        raise DigitlabError("no training batches recorded: nothing to plot")
    valid = [float(row["valid_loss"]) for row in history if row.get("valid_loss") is not None]
    if n_batches_per_epoch is None and valid and len(train) % len(history):
        raise DigitlabError(f"{len(train)} batches do not split into {len(history)} epochs: pass n_batches_per_epoch")
    per_epoch = n_batches_per_epoch or len(train) // max(len(history), 1)
    ends = [(e + 1) * per_epoch - 1 for e in range(len(valid))]
    fig, ax, own = panel_axes(ax, (5.0, 3.0))
    ax.plot(range(len(train)), train, linewidth=1, label="train (per batch)")
    if valid:
        ax.plot(ends, valid, "o-", color="C1", markersize=4, label="valid (per epoch)")
    ax.set_xlabel("batch")
    ax.set_ylabel("loss")
    ax.legend(fontsize=7)
    ax.set_title(f"final train batch {train[-1]:.4f}" + (f", valid {valid[-1]:.4f}" if valid else ""), fontsize=9)
    values = {"batch": list(range(len(train))), "train_loss": train, "epoch_end": ends, "valid_loss": valid}
    return finish(fig, path, values, own)


def plot_lr_schedule(lrs: Any, *, ax: Axes | None = None, path: str | Path | None = None) -> Figure:
    """The learning rate of every training batch (e.g. one-cycle's warm-up and annealing).

    `.values`: {"n_batches", "max_lr", "max_at", "first_lr", "last_lr", "constant"}.
    """
    values = _floats(lrs)
    if not values:
        raise DigitlabError("no learning rates recorded: nothing to plot")
    peak = int(np.argmax(values))
    summary = {
        "n_batches": len(values),
        "max_lr": values[peak],
        "max_at": peak,
        "first_lr": values[0],
        "last_lr": values[-1],
        "constant": is_constant(values),
    }
    fig, ax, own = panel_axes(ax, (5.0, 3.0))
    ax.plot(range(len(values)), values)
    ax.set_xlabel("batch")
    ax.set_ylabel("learning rate")
    title = (
        f"constant lr {values[0]:g}"
        if summary["constant"]
        else f"peak {values[peak]:.3g} at batch {peak}, last {values[-1]:.3g}"
    )
    ax.set_title(title, fontsize=9)
    return finish(fig, path, summary, own)


def plot_lr_find(
    lrs: Any, losses: Any, suggestion: float | None = None, *, ax: Axes | None = None, path: str | Path | None = None
) -> Figure:
    """Loss against learning rate on a log axis (the learning-rate finder), suggestion marked.

    Non-finite losses (the finder's last, exploded batches) are left out of the curve.
    `.values`: {"min_loss", "lr_at_min", "suggestion"}.
    """
    xs, ys = _floats(lrs), _floats(losses)
    if len(xs) != len(ys):
        raise DigitlabError(f"{len(xs)} learning rates but {len(ys)} losses")
    points = [(x, y) for x, y in zip(xs, ys) if x > 0 and math.isfinite(y)]
    if not points:
        raise DigitlabError("no finite losses at positive learning rates: nothing to plot")
    xs, ys = (list(v) for v in zip(*points))
    best = int(np.argmin(ys))
    result = {"min_loss": ys[best], "lr_at_min": xs[best], "suggestion": suggestion}
    fig, ax, own = panel_axes(ax, (5.0, 3.0))
    ax.plot(xs, ys)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("loss")
    title = f"lowest loss {ys[best]:.4g} at lr {xs[best]:.3g}"
    if suggestion is not None:
        # the loss at the suggestion, read off the curve in log-lr space
        at = float(np.interp(math.log10(suggestion), np.log10(xs), ys))
        ax.axvline(suggestion, color="C3", linestyle="--", linewidth=1)
        ax.plot([suggestion], [at], "o", color="C3")
        title += f"; suggestion {suggestion:.3g}"
    ax.set_title(title, fontsize=9)
    return finish(fig, path, result, own)
