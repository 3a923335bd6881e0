"""Figures for training runs and their evaluation: curves, schedules, confusion, top losses, weights.

Inputs are what the rest of digitlab produces (RecorderCB's history/lrs/losses,
metrics.accuracy_report's confusion, a model and its saved meta); each function returns
the numbers its titles show.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DigitlabError
from ..inference import labels_from_outputs, model_outputs, probabilities
from ..models import Linear
from .common import image_axis, saved_figure

PLAIN_NORMALIZATION = {"scale": 1 / 255, "mean": 0.0, "std": 1.0}  # pixels / 255, as non-CNN models train


def _floats(values: Any) -> list[float]:
    """Python floats from floats, 0-dim tensors (RecorderCB.losses) or a 1-d tensor/array."""
    if isinstance(values, (torch.Tensor, np.ndarray)):
        return [float(v) for v in values.reshape(-1).tolist()]
    return [float(v) for v in values]


def plot_loss_curves(history: list[dict], path: str | Path, metric: str = "batch_accuracy") -> dict[str, list]:
    """Train and valid loss per epoch; the metric per epoch on a second panel.

    Returns {"epoch", "train_loss", "valid_loss", metric: lists per epoch}; the metric list is
    empty when the history has no such column.
    """
    if not history:
        raise DigitlabError("no epochs recorded: nothing to plot")
    curves: dict[str, list] = {"epoch": [row.get("epoch", i + 1) for i, row in enumerate(history)]}
    for key in ("train_loss", "valid_loss", metric):
        curves[key] = [float(row[key]) for row in history if key in row]
    with saved_figure(path, 1, 2, panel=(4.0, 3.0)) as (_, axes):
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
    return curves


def plot_lr_schedule(lrs: list[float], path: str | Path) -> dict[str, float]:
    """The learning rate of every training batch (e.g. one-cycle's warm-up and annealing)."""
    values = _floats(lrs)
    if not values:
        raise DigitlabError("no learning rates recorded: nothing to plot")
    peak = int(np.argmax(values))
    summary = {"n_batches": len(values), "max_lr": values[peak], "max_at": peak,
               "first_lr": values[0], "last_lr": values[-1]}
    with saved_figure(path, 1, 1, panel=(5.0, 3.0)) as (_, axes):
        ax = axes[0, 0]
        ax.plot(range(len(values)), values)
        ax.set_xlabel("batch")
        ax.set_ylabel("learning rate")
        ax.set_title(f"peak {values[peak]:.3g} at batch {peak}, last {values[-1]:.3g}", fontsize=9)
    return summary


def plot_lr_find(lrs: list[float], losses: list[float], path: str | Path,
                 suggestion: float | None = None) -> dict[str, float | None]:
    """Loss against learning rate on a log axis (the learning-rate finder), suggestion marked.

    Non-finite losses (the finder's last, exploded batches) are left out of the curve.
    Returns {"min_loss", "lr_at_min", "suggestion"}.
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
    with saved_figure(path, 1, 1, panel=(5.0, 3.0)) as (_, axes):
        ax = axes[0, 0]
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
    return result


def plot_confusion_matrix(confusion: list[list[int]], classes: tuple[str, ...], path: str | Path) -> float:
    """Counts in cells (rows actual, columns predicted); returns the accuracy trace / sum in the title."""
    counts = np.asarray(confusion, dtype=np.int64)  # (C, C)
    if counts.shape != (len(classes), len(classes)):
        raise DigitlabError(f"confusion matrix {counts.shape} does not match {len(classes)} classes")
    total = int(counts.sum())
    if total == 0:
        raise DigitlabError("empty confusion matrix: no predictions to show")
    accuracy = float(np.trace(counts) / total)
    side = max(3.0, 0.45 * len(classes) + 1.5)  # inches: room for 4-digit counts in 10x10
    with saved_figure(path, 1, 1, panel=(side, side)) as (_, axes):
        ax = axes[0, 0]
        ax.imshow(counts, cmap="Blues")
        threshold = counts.max() / 2  # white text on the darker half of the cells
        for i in range(len(classes)):
            for j in range(len(classes)):
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if counts[i, j] > threshold else "black")
        ax.set_xticks(range(len(classes)), classes)
        ax.set_yticks(range(len(classes)), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("actual")
        ax.set_title(f"accuracy {accuracy:.4f} ({int(np.trace(counts))}/{total})", fontsize=9)
    return accuracy


def top_losses(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, meta: dict,
               k: int = 9) -> list[dict]:
    """The k digits the model is most wrong (or least sure) about, highest loss first.

    images: (N, 28, 28) uint8; labels: (N,) class indices. Each item: {"index", "actual",
    "predicted" (class indices), "probability" (of the prediction), "loss" (-log p(actual))}.
    Binary models (meta["binary"]) output one logit of the first class.
    """
    images, labels = torch.as_tensor(images), torch.as_tensor(labels).long()
    outputs = model_outputs(model, images, meta.get("normalization", PLAIN_NORMALIZATION))  # (N, n_out)
    binary = bool(meta.get("binary", outputs.shape[1] == 1))
    probs = probabilities(outputs, binary)  # (N, C)
    predicted = labels_from_outputs(outputs, binary)  # (N,)
    if binary:
        # -log sigmoid(z) for the first class, -log sigmoid(-z) for the second: stable for large |z|
        sign = 1 - 2 * labels.float()  # +1 where actual is class 0
        losses = -F.logsigmoid(sign * outputs[:, 0])
    else:
        losses = F.cross_entropy(outputs, labels, reduction="none")
    order = torch.argsort(losses, descending=True, stable=True)[:k]
    return [{"index": int(i), "actual": int(labels[i]), "predicted": int(predicted[i]),
             "probability": float(probs[i, predicted[i]]), "loss": float(losses[i])} for i in order]


def plot_top_losses(items: list[dict], images: torch.Tensor, classes: tuple[str, ...], path: str | Path) -> list[str]:
    """A grid of the top-loss digits titled "predicted/actual/loss/probability" (fastai's order).

    Returns the titles, in the items' order.
    """
    if not items:
        raise DigitlabError("no items to plot")
    images = torch.as_tensor(images)
    ncols = math.ceil(math.sqrt(len(items)))
    nrows = math.ceil(len(items) / ncols)
    titles = [f"{classes[it['predicted']]}/{classes[it['actual']]}/{it['loss']:.2f}/{it['probability']:.2f}"
              for it in items]
    with saved_figure(path, nrows, ncols, panel=(1.6, 1.8)) as (fig, axes):
        for ax in axes.flat[len(items):]:
            ax.set_visible(False)
        for ax, item, title in zip(axes.flat, items, titles):
            image_axis(ax, images[item["index"]], title, vmin=0, vmax=255)
        fig.suptitle("predicted/actual/loss/probability", fontsize=9)
    return titles


def plot_linear_weights(model: nn.Module, classes: tuple[str, ...], path: str | Path) -> int:
    """Each output's 784 weights as a 28x28 map: red pixels push towards that class, blue away.

    One colour scale for all maps, centred at 0, so maps compare. A binary model (one output,
    the logit of the first class) gives one map. Returns the number of maps.
    """
    if not isinstance(model, Linear):
        raise DigitlabError(f"weight maps need a digitlab Linear model, got {type(model).__name__}")
    weights = model.linear.weight.detach().cpu().reshape(-1, 28, 28)  # (n_out, 28, 28)
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
    nrows = math.ceil(n_out / ncols)
    with saved_figure(path, nrows, ncols, panel=(2.0, 2.0)) as (fig, axes):
        for ax in axes.flat[n_out:]:
            ax.set_visible(False)
        for ax, w, title in zip(axes.flat, weights, titles):
            shown = image_axis(ax, w, title, cmap="RdBu_r", vmin=-limit, vmax=limit)
        fig.colorbar(shown, ax=axes.ravel().tolist(), shrink=0.8)
    return n_out
