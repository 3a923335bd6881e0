"""The chapter's ideas as figures: pixels as numbers, ideal digits, distances, activations, SGD.

Each function draws one PNG and returns the numbers it shows, so a test (or a notebook) can
check the picture's claims against the library that computed them.
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

CROP_PRESETS: dict[str, Crop] = {
    "top-left": (slice(0, 14), slice(0, 14)),
    "centre": (slice(7, 21), slice(7, 21)),
    "center": (slice(7, 21), slice(7, 21)),
}


def resolve_crop(crop: str | Crop | None) -> Crop:
    """A preset name ("top-left", "centre"), parse_crop's "ROWS,COLS", a (rows, cols) slice pair, or None."""
    if isinstance(crop, tuple):
        return crop
    preset = CROP_PRESETS.get((crop or "").strip().lower())
    return preset if preset is not None else parse_crop(crop)


def _uint8_image(image: torch.Tensor | np.ndarray) -> torch.Tensor:
    image = torch.as_tensor(image)
    if image.dtype != torch.uint8 or image.ndim != 2:
        raise DigitlabError(f"expected a (H, W) uint8 image, got {tuple(image.shape)} {image.dtype}")
    return image


def pixel_table_html(image: torch.Tensor | np.ndarray, crop: str | Crop | None = None) -> str:
    """The book's `df.style.background_gradient('Greys')` as self-contained HTML (inline styles only).

    Shading uses matplotlib's Greys on a fixed 0..255 scale (pandas scales to the data's range;
    fixed is what makes a crop of background stay white). Text turns white on dark cells.
    """
    from matplotlib import colormaps

    image = _uint8_image(image)
    rows, cols = (range(*s.indices(n)) for s, n in zip(resolve_crop(crop), image.shape))
    greys = colormaps["Greys"]
    cell = "padding:1px 3px;text-align:right;font-family:monospace;font-size:7pt"
    lines = ['<table style="border-collapse:collapse">',
             "<tr><th></th>" + "".join(f'<th style="{cell}">{c}</th>' for c in cols) + "</tr>"]
    for r in rows:
        tds = []
        for c in cols:
            value = int(image[r, c])
            red, green, blue, _ = (round(255 * v) for v in greys(value / 255))
            luminance = (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255
            ink = "#f1f1f1" if luminance < 0.408 else "#000000"  # pandas' text_color_threshold
            tds.append(f'<td style="{cell};background-color:rgb({red},{green},{blue});color:{ink}">{value}</td>')
        lines.append(f'<tr><th style="{cell}">{r}</th>' + "".join(tds) + "</tr>")
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


def _as_float(image: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float in [0, 1]; floats are taken as already scaled."""
    image = torch.as_tensor(image)
    return image.float() / 255 if image.dtype == torch.uint8 else image.float()


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
    x = _as_float(image)  # (28, 28) in [0, 1]
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
    nrows = math.ceil(n_classes / ncols)
    finite = table[torch.isfinite(table)]
    bins = np.linspace(float(finite.min()), float(finite.max()) + 1e-6, 31) if len(finite) else 30
    result: dict[str, dict] = {}
    with saved_figure(path, nrows, ncols, panel=(3.2, 2.6)) as (_, axes):
        for ax in axes.flat[n_classes:]:
            ax.set_visible(False)
        for true, (ax, name) in enumerate(zip(axes.flat, model.classes)):
            rows = table[digits.labels == true]  # (n_true, C)
            n = len(rows)
            accuracy = float((predicted[digits.labels == true] == true).float().mean()) if n else None
            means = {ideal: (float(rows[:, j].mean()) if n else None) for j, ideal in enumerate(model.classes)}
            result[name] = {"n": n, "accuracy": accuracy, "mean": means}
            for j, ideal in enumerate(model.classes):
                if n:
                    own = j == true
                    ax.hist(rows[:, j].numpy(), bins=bins, histtype="stepfilled" if own else "step",
                            alpha=0.5 if own else 0.9, linewidth=2 if own else 1, color=f"C{j % 10}",
                            label=f"to {ideal} ({means[ideal]:.3f})")
            where = f"{accuracy:.0%} nearest their own ideal" if accuracy is not None else "no images"
            ax.set_title(f"actual {name} (n={n}): {where}", fontsize=8)
            ax.set_xlabel(f"{model.metric} distance", fontsize=7)
            ax.tick_params(labelsize=6)
            if n:
                ax.legend(fontsize=6)
    return result


def plot_activations(path: str | Path) -> dict[str, torch.Tensor]:
    """Sigmoid and ReLU on [-2, 2] with their derivatives from autograd (the book's plot_function).

    Returns {"x": (101,), "sigmoid", "sigmoid_grad", "relu", "relu_grad": (101,) each}.
    """
    result: dict[str, torch.Tensor] = {}
    with saved_figure(path, 1, 2, panel=(4.0, 3.0)) as (_, axes):
        for ax, (name, fn) in zip(axes[0], (("sigmoid", torch.sigmoid), ("relu", torch.relu))):
            x = torch.linspace(-2, 2, 101).requires_grad_()
            y = fn(x)
            y.sum().backward()  # each y[i] depends only on x[i]: the sum's gradient is dy/dx pointwise
            result["x"] = x.detach()
            result[name], result[f"{name}_grad"] = y.detach(), x.grad.detach()
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
        (x ** 2).backward()
        with torch.no_grad():
            x -= lr * x.grad
        x.grad = None
        trajectory.append(x.item())
    return trajectory


def plot_sgd_quadratic(path: str | Path, lrs: tuple[float, ...] = (0.1, 1.1), steps: int = 8,
                       start: float = -1.5) -> dict[float, list[float]]:
    """f(x) = x**2, the starting gradient and the SGD steps, one panel per learning rate.

    With lr > 1 each step overshoots by a factor |1 - 2 lr| > 1: the axis widens to show it
    diverge. Returns {lr: [x_0, ..., x_steps]}.
    """
    result = {lr: sgd_quadratic(lr, steps, start) for lr in lrs}
    with saved_figure(path, 1, len(lrs), panel=(4.0, 3.2)) as (_, axes):
        for ax, (lr, xs) in zip(axes[0], result.items()):
            reach = max(abs(v) for v in xs) * 1.15  # wide enough for every step, diverging or not
            grid = np.linspace(-reach, reach, 200)
            ax.plot(grid, grid ** 2, color="grey")
            ys = [v ** 2 for v in xs]
            ax.plot(xs, ys, "o-", color="C1", markersize=4, linewidth=0.8)
            # the gradient at the start: along the tangent (slope 2x), pointing downhill, where SGD goes
            dx = -0.3 * xs[0]
            ax.annotate(f"slope {2 * xs[0]:.2f}", xy=(xs[0] + dx, ys[0] + 2 * xs[0] * dx), xytext=(xs[0], ys[0]),
                        arrowprops={"arrowstyle": "->", "color": "C3", "linewidth": 1.5}, fontsize=7, color="C3")
            ax.set_xlim(-reach, reach)
            ax.set_ylim(-0.05 * reach ** 2, reach ** 2 * 1.05)
            ax.set_title(f"lr {lr}: x {xs[0]:.2f} -> {xs[-1]:.3g} in {steps} steps", fontsize=9)
    return result


def roller_coaster(seed: int = 42, steps: int = 10, lr: float = 1e-5) -> dict:
    """The book's speed-of-a-roller-coaster example: fit a*t**2 + b*t + c to noisy data by SGD.

    Returns {"t", "speed": (20,), "losses": [loss after 0..steps steps] (steps + 1 floats),
    "params": [[a, b, c] after 0..steps steps], "final_params": [a, b, c]}. One seeded
    generator draws the noise then the start, so a seed always gives the same numbers.
    """
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(0, 20).float()  # seconds
    speed = torch.randn(20, generator=generator) * 3 + 0.75 * (t - 9.5) ** 2 + 1
    params = torch.randn(3, generator=generator).requires_grad_()
    losses, history = [], []
    for step in range(steps + 1):
        a, b, c = params
        loss = ((a * t ** 2 + b * t + c - speed) ** 2).mean()  # MSE
        losses.append(loss.item())
        history.append(params.detach().tolist())
        if step == steps:
            break
        loss.backward()
        with torch.no_grad():
            params -= lr * params.grad
        params.grad = None
    return {"t": t, "speed": speed, "losses": losses, "params": history, "final_params": history[-1]}


def plot_roller_coaster(path: str | Path, seed: int = 42, steps: int = 10, lr: float = 1e-5) -> dict:
    """The data with the fitted curve after a few steps (0, 2, 5, all) and the loss per step."""
    fit = roller_coaster(seed, steps, lr)
    t = fit["t"]
    shown = sorted({s for s in (0, 2, 5, steps) if s <= steps})
    with saved_figure(path, 1, 2, panel=(4.0, 3.2)) as (_, axes):
        data_ax, loss_ax = axes[0]
        data_ax.scatter(t, fit["speed"], color="black", s=12, label="speed")
        for k, step in enumerate(shown):
            a, b, c = fit["params"][step]
            data_ax.plot(t, a * t ** 2 + b * t + c, color=f"C{k}", label=f"step {step}")
        data_ax.set_xlabel("time")
        data_ax.legend(fontsize=7)
        data_ax.set_title(f"seed {seed}, lr {lr:g}", fontsize=9)
        loss_ax.plot(range(steps + 1), fit["losses"], "o-", markersize=3)
        loss_ax.set_xlabel("step")
        loss_ax.set_title(f"MSE {fit['losses'][0]:.1f} -> {fit['losses'][-1]:.1f}", fontsize=9)
    return fit
