"""The chapter's ideas as figures: pixels as numbers, ideal digits, distances, activations, SGD.

Each function draws one PNG and returns the numbers it shows, to check against the library.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..baseline import PixelSimilarity, mnist_distance
from ..digits import Digits
from ..errors import DigitlabError
from ..show import Crop, parse_crop, save_pixel_png
from .common import image_axis, saved_figure

_CENTRE: Crop = (slice(7, 21), slice(7, 21))  # the middle 14x14 pixels, where the strokes are
CROP_PRESETS: dict[str, Crop] = {"top-left": (slice(0, 14), slice(0, 14)), "centre": _CENTRE, "center": _CENTRE}


def resolve_crop(crop: str | Crop | None) -> Crop:
    """A preset name ("top-left", "centre"), parse_crop's "ROWS,COLS", a (rows, cols) slice pair, or None."""
    if not isinstance(crop, tuple):
        crop = CROP_PRESETS.get((crop or "").strip().lower()) or parse_crop(crop)
    return crop


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
    rows, cols = (range(*s.indices(n)) for s, n in zip(resolve_crop(crop), image.shape))
    cell = "padding:1px 3px;text-align:right;font-family:monospace;font-size:7pt"
    lines = ['<table style="border-collapse:collapse">',
             "<tr><th></th>" + "".join(f'<th style="{cell}">{c}</th>' for c in cols) + "</tr>"]
    for r in rows:
        values = [int(image[r, c]) for c in cols]
        tds = "".join(f'<td style="{cell};{_shade(greys(v / 255))}">{v}</td>' for v in values)
        lines.append(f'<tr><th style="{cell}">{r}</th>{tds}</tr>')
    return "\n".join(lines + ["</table>"])


class PixelTable:
    """An image's pixel values, shaded; Jupyter renders it through `_repr_html_`."""

    def __init__(self, image: torch.Tensor | np.ndarray, crop: str | Crop | None = None) -> None:
        self.image, self.crop = _uint8_image(image), resolve_crop(crop)

    def _repr_html_(self) -> str:
        return pixel_table_html(self.image, self.crop)

    def save_png(self, path: str | Path, title: str = "") -> None:
        """The same table as a picture (show.save_pixel_png)."""
        save_pixel_png(self.image, str(path), self.crop, title)


def plot_ideal_digits(ideals: torch.Tensor, classes: tuple[str, ...], path: str | Path) -> dict[str, float]:
    """The mean image of each class side by side; returns each one's mean ink (shown in titles)."""
    ink = {name: float(ideal.mean()) for name, ideal in zip(classes, ideals)}
    with saved_figure(path, 1, len(classes), panel=(1.6, 1.8)) as (_, axes):
        for ax, name, ideal in zip(axes[0], classes, ideals):
            image_axis(ax, ideal, f"ideal {name}\nink {ink[name]:.3f}", vmin=0, vmax=1)
    return ink


def plot_against_ideals(image: torch.Tensor, ideals: torch.Tensor, classes: tuple[str, ...],
                        path: str | Path) -> dict[str, dict[str, float]]:
    """One row per class: image, ideal, image - ideal, |difference|, difference squared.

    L1 is the mean of the |difference| panel, RMSE the root of the squared panel's mean:
    both come from baseline.mnist_distance. Returns {class: {"l1": ..., "rmse": ...}}.
    """
    image = torch.as_tensor(image)  # uint8 pixels are scaled to [0, 1]; floats are taken as scaled already
    x = image.float() / 255 if image.dtype == torch.uint8 else image.float()  # (28, 28)
    distances: dict[str, dict[str, float]] = {}
    with saved_figure(path, len(classes), 5, panel=(1.6, 1.8)) as (_, axes):
        for row, name, ideal in zip(axes, classes, ideals):
            diff = x - ideal  # (28, 28) in [-1, 1]
            l1, rmse = (float(mnist_distance(x, ideal, m)) for m in ("l1", "rmse"))
            distances[name] = {"l1": l1, "rmse": rmse}
            image_axis(row[0], x, "image", vmin=0, vmax=1)
            image_axis(row[1], ideal, f"ideal {name}", vmin=0, vmax=1)
            image_axis(row[2], diff, "image - ideal", cmap="RdBu_r", vmin=-1, vmax=1)
            image_axis(row[3], diff.abs(), f"|diff|: L1 {l1:.4f}", vmin=0, vmax=1)
            image_axis(row[4], diff.square(), f"diff²: RMSE {rmse:.4f}", vmin=0, vmax=1)
    return distances


def plot_distance_histograms(model: PixelSimilarity, digits: Digits, path: str | Path) -> dict[str, dict]:
    """For each true class, histograms of its digits' distances to every ideal digit.

    Where a class's own histogram overlaps another's, the baseline confuses the two. Returns
    {true class: {"n": count, "accuracy": share nearest to their own ideal or None,
    "mean": {ideal class: mean distance or None}}}; accuracy and means are in the titles/legend.
    """
    table = model.distances(digits.images)  # (N, C) distances
    predicted = table.argmin(1)
    n_classes = len(model.classes)
    ncols = min(n_classes, 5)
    bins = np.linspace(float(table.min()), float(table.max()) + 1e-6, 31) if len(table) else 30  # shared by all
    result: dict[str, dict] = {}
    with saved_figure(path, math.ceil(n_classes / ncols), ncols, panel=(3.2, 2.6)) as (_, axes):
        for ax in axes.flat[n_classes:]:
            ax.set_visible(False)
        for true, (ax, name) in enumerate(zip(axes.flat, model.classes)):
            mine = digits.labels == true
            rows, n = table[mine], int(mine.sum())  # (n, C) distances of this class's digits
            accuracy = float((predicted[mine] == true).float().mean()) if n else None
            means = {ideal: float(rows[:, j].mean()) if n else None for j, ideal in enumerate(model.classes)}
            result[name] = {"n": n, "accuracy": accuracy, "mean": means}
            for j, ideal in enumerate(model.classes if n else ()):
                own = j == true  # filled: the distance to its own ideal, which should be the smallest
                ax.hist(rows[:, j].numpy(), bins=bins, histtype="stepfilled" if own else "step", color=f"C{j % 10}",
                        alpha=0.5 if own else 0.9, linewidth=2 if own else 1, label=f"to {ideal} ({means[ideal]:.3f})")
            where = f"{accuracy:.0%} nearest their own ideal" if n else "no images"
            ax.set_title(f"actual {name} (n={n}): {where}", fontsize=8)
            ax.set_xlabel(f"{model.metric} distance", fontsize=7)
            ax.tick_params(labelsize=6)
            if n:
                ax.legend(fontsize=6)
    return result


def plot_activations(path: str | Path) -> dict[str, torch.Tensor]:
    """Sigmoid and ReLU on [-2, 2] with their derivatives from autograd (the book's plot_function).

    Returns {"x", "sigmoid", "sigmoid_grad", "relu", "relu_grad"}: (101,) tensors.
    """
    result: dict[str, torch.Tensor] = {"x": torch.linspace(-2, 2, 101)}
    with saved_figure(path, 1, 2, panel=(4.0, 3.0)) as (_, axes):
        for ax, (name, fn) in zip(axes[0], (("sigmoid", torch.sigmoid), ("relu", torch.relu))):
            x = result["x"].clone().requires_grad_()
            y = fn(x)
            y.sum().backward()  # each y[i] depends only on x[i]: the sum's gradient is dy/dx pointwise
            result[name], result[f"{name}_grad"] = y.detach(), x.grad
            ax.plot(result["x"], result[name], label=name)
            ax.plot(result["x"], result[f"{name}_grad"], "--", label="derivative (autograd)")
            ax.set_title(f"{name}: steepest slope {float(x.grad.max()):.2f}", fontsize=9)
            ax.axhline(0, color="grey", linewidth=0.5)
            ax.legend(fontsize=7)
    return result


def sgd_quadratic(lr: float, steps: int = 8, start: float = -1.5) -> list[float]:
    """x after 0..steps SGD steps on f(x) = x**2 (gradient by autograd): x <- x - lr * 2x."""
    x = torch.tensor(float(start), requires_grad=True)
    trajectory = [x.item()]
    for _ in range(steps):
        (grad,) = torch.autograd.grad(x ** 2, x)  # d(x**2)/dx = 2x, by autograd
        x = (x - lr * grad).detach().requires_grad_()  # the step, then a fresh leaf for the next gradient
        trajectory.append(x.item())
    return trajectory


def plot_sgd_quadratic(path: str | Path, lrs: tuple[float, ...] = (0.1, 1.1), steps: int = 8,
                       start: float = -1.5) -> dict[float, list[float]]:
    """f(x) = x**2, the starting gradient and the SGD steps, one panel per lr; returns {lr: [x_0..x_steps]}.

    With lr > 1 each step overshoots by a factor |1 - 2 lr| > 1: the axis widens to show it diverge.
    """
    result = {lr: sgd_quadratic(lr, steps, start) for lr in lrs}
    with saved_figure(path, 1, len(lrs), panel=(4.0, 3.2)) as (_, axes):
        for ax, (lr, xs) in zip(axes[0], result.items()):
            reach = max(abs(v) for v in xs) * 1.15  # wide enough for every step, diverging or not
            grid, ys = np.linspace(-reach, reach, 200), [v ** 2 for v in xs]
            ax.plot(grid, grid ** 2, color="grey")
            ax.plot(xs, ys, "o-", color="C1", markersize=4, linewidth=0.8)
            # the gradient at the start: along the tangent (slope 2x), pointing downhill, where SGD goes
            dx = -0.3 * xs[0]
            ax.annotate(f"slope {2 * xs[0]:.2f}", xy=(xs[0] + dx, ys[0] + 2 * xs[0] * dx), xytext=(xs[0], ys[0]),
                        arrowprops={"arrowstyle": "->", "color": "C3", "linewidth": 1.5}, fontsize=7, color="C3")
            ax.set(xlim=(-reach, reach), ylim=(-0.05 * reach ** 2, 1.05 * reach ** 2))
            ax.set_title(f"lr {lr}: x {xs[0]:.2f} -> {xs[-1]:.3g} in {steps} steps", fontsize=9)
    return result


def roller_coaster(seed: int = 42, steps: int = 10, lr: float = 1e-5) -> dict:
    """The book's speed-of-a-roller-coaster example: fit a*t**2 + b*t + c to noisy data by SGD.

    Returns {"t", "speed": (20,), "losses": [MSE after 0..steps steps], "params": [[a, b, c] after 0..steps
    steps], "final_params": [a, b, c]}. One seeded generator draws the noise, then the start: same seed, same numbers.
    """
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(0, 20).float()  # seconds
    speed = torch.randn(20, generator=generator) * 3 + 0.75 * (t - 9.5) ** 2 + 1
    params = torch.randn(3, generator=generator).requires_grad_()
    losses, history = [], []
    for step in range(steps + 1):
        a, b, c = params
        loss = ((a * t ** 2 + b * t + c - speed) ** 2).mean()  # MSE, in (speed units)^2
        losses.append(loss.item())
        history.append(params.detach().tolist())
        if step < steps:
            loss.backward()
            with torch.no_grad():
                params -= lr * params.grad
            params.grad = None
    return {"t": t, "speed": speed, "losses": losses, "params": history, "final_params": history[-1]}


def plot_roller_coaster(path: str | Path, seed: int = 42, steps: int = 10, lr: float = 1e-5) -> dict:
    """The data with the fitted curve after a few steps (0, 2, 5, all) and the loss per step (x axis: step)."""
    fit = roller_coaster(seed, steps, lr)
    t, shown = fit["t"], sorted({s for s in (0, 2, 5, steps) if s <= steps})
    with saved_figure(path, 1, 2, panel=(4.0, 3.2)) as (_, axes):
        data_ax, loss_ax = axes[0]
        data_ax.scatter(t, fit["speed"], color="black", s=12, label="speed")
        for k, step in enumerate(shown):
            a, b, c = fit["params"][step]
            data_ax.plot(t, a * t ** 2 + b * t + c, color=f"C{k}", label=f"step {step}")
        data_ax.legend(fontsize=7)
        data_ax.set_xlabel("time")
        data_ax.set_title(f"seed {seed}, lr {lr:g}", fontsize=9)
        loss_ax.plot(range(steps + 1), fit["losses"], "o-", markersize=3)
        loss_ax.set_title(f"MSE by step: {fit['losses'][0]:.1f} -> {fit['losses'][-1]:.1f}", fontsize=9)
    return fit
