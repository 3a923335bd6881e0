"""The chapter's optimisation figures: sigmoid and ReLU, SGD on x**2, the roller coaster fitted by SGD.

`sgd_quadratic` and `roller_coaster` compute the numbers; `plot_*` draw them and return a Figure
whose `.values` holds them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from .common import DigitlabFigure, finish, new_figure

ACTIVATION_RANGES = {"sigmoid": (-6.0, 6.0), "relu": (-2.0, 2.0)}  # sigmoid flattens beyond |x| ~ 4: show it
MARGIN = 0.06  # the SGD figure's arrow stays this far (axes fractions) from the path's markers
NOISE_STD = 3.0  # the roller coaster's speed noise: an MSE near NOISE_STD**2 = 9 is as good as a fit gets


def plot_activations(
    ranges: dict[str, tuple[float, float]] | None = None, n: int = 101, *, path: str | Path | None = None
) -> DigitlabFigure:
    """Sigmoid and ReLU, each on its own x range, with their derivatives from autograd (the book's plot_function).

    `.values`: {"sigmoid": {"x", "y", "grad"}, "relu": {...}}, (n,) tensors.
    """
    ranges = {**ACTIVATION_RANGES, **(ranges or {})}
    result: dict[str, dict[str, torch.Tensor]] = {}
    fig, axes = new_figure(1, 2, panel=(4.0, 3.0))
    for ax, (name, fn) in zip(axes[0], (("sigmoid", torch.sigmoid), ("relu", torch.relu))):
        x = torch.linspace(*ranges[name], n).requires_grad_()
        y = fn(x)
        y.sum().backward()  # each y[i] depends only on x[i]: the sum's gradient is dy/dx pointwise
        curve = result[name] = {"x": x.detach(), "y": y.detach(), "grad": cast(torch.Tensor, x.grad)}
        ax.plot(curve["x"], curve["y"], label=name)
        ax.plot(curve["x"], curve["grad"], "--", label="derivative (autograd)")
        ax.set_title(
            f"{name} on [{ranges[name][0]:g}, {ranges[name][1]:g}]: steepest slope {float(curve['grad'].max()):.2f}",
            fontsize=9,
        )
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.legend(fontsize=7)
    return finish(fig, path, result)


def sgd_quadratic(lr: float, steps: int = 8, start: float = -1.5) -> list[float]:
    """x after 0..steps SGD steps on f(x) = x**2 (gradient by autograd): x <- x - lr * 2x."""
    x = torch.tensor(float(start), requires_grad=True)
    trajectory = [x.item()]
    for _ in range(steps):
        (grad,) = torch.autograd.grad(x**2, x)  # d(x**2)/dx = 2x, by autograd
        x = (x - lr * grad).detach().requires_grad_()  # the step, then a fresh leaf for the next gradient
        trajectory.append(x.item())
    return trajectory


def _step_arrow(
    xs: list[float], xlim: tuple[float, float], ylim: tuple[float, float]
) -> tuple[tuple[float, float], tuple[float, float]]:
    """(start, tip) of an arrow along the tangent at xs[0], downhill: the way the gradient says to step.

    Halved until it stays inside the axes and never comes nearer than MARGIN (in axes fractions)
    to another marker of the path (nor nearer than its tail already is), so it covers none;
    where downhill has no room for an arrow of 2 * MARGIN, uphill when that has more.
    """

    def fraction(x: np.ndarray, y: np.ndarray) -> np.ndarray:  # data -> axes fractions, (..., 2)
        return np.stack([(x - xlim[0]) / (xlim[1] - xlim[0]), (y - ylim[0]) / (ylim[1] - ylim[0])], -1)

    x0, slope = xs[0], 2 * xs[0]
    others = fraction(np.array(xs[1:]), np.array(xs[1:]) ** 2).reshape(-1, 2)  # (steps, 2)

    def clear(direction: float) -> tuple[float, float]:
        """(length in axes fractions, dx in data) of the longest clear arrow, starting at a seventh of the width."""
        dx = (xlim[1] - xlim[0]) / 7
        while dx > 1e-9:
            along = np.linspace(0, direction * dx, 25)  # (25,) x offsets of the arrow's points
            segment = fraction(x0 + along, x0**2 + slope * along)  # (25, 2), segment[0] is the tail
            gaps = np.linalg.norm(segment[:, None] - others[None], axis=2)  # (25, steps)
            inside = bool(((segment > 0.02) & (segment < 0.98)).all())
            if inside and (gaps.min(0) >= np.minimum(MARGIN, gaps[0])).all():
                return float(np.linalg.norm(segment[-1] - segment[0])), dx
            dx /= 2
        return 0.0, 0.0

    downhill = -1.0 if slope > 0 else 1.0
    (length, dx), direction = clear(downhill), downhill
    if length < 2 * MARGIN and clear(-downhill)[0] > length:
        (length, dx), direction = clear(-downhill), -downhill
    return (x0, x0**2), (x0 + direction * dx, x0**2 + slope * direction * dx)


def plot_sgd_quadratic(
    lrs: tuple[float, ...] = (0.1, 1.1), steps: int = 8, start: float = -1.5, *, path: str | Path | None = None
) -> DigitlabFigure:
    """f(x) = x**2, the gradient at the start and the SGD steps, one panel per lr; `.values`: {lr: [x_0..x_steps]}.

    With lr > 1 each step overshoots by a factor |1 - 2 lr| > 1: the axis widens to show it diverge.
    The slope at the start is a red arrow along the tangent (downhill where there is room), kept
    clear of the path's markers; its numbers are in a box at the top centre, above the path.
    """
    result = {lr: sgd_quadratic(lr, steps, start) for lr in lrs}
    fig, axes = new_figure(1, len(lrs), panel=(4.0, 3.2))
    for ax, (lr, xs) in zip(axes[0], result.items()):
        reach = max(abs(v) for v in xs) * 1.15  # wide enough for every step, diverging or not
        xlim, ylim = (-reach, reach), (-0.05 * reach**2, 1.05 * reach**2)
        grid, ys = np.linspace(-reach, reach, 200), [v**2 for v in xs]
        ax.plot(grid, grid**2, color="grey")
        ax.plot(xs, ys, "o-", color="C1", markersize=4, linewidth=0.8, label="SGD steps")
        tail, tip = _step_arrow(xs, xlim, ylim)
        ax.annotate("", xy=tip, xytext=tail, arrowprops={"arrowstyle": "->", "color": "C3", "linewidth": 1.5})
        ax.text(
            0.5,
            0.97,
            f"slope at x={xs[0]:g}: 2x = {2 * xs[0]:.2f}\nred: the tangent there; each step x -= {lr:g} * slope",
            transform=ax.transAxes,
            ha="center",
            va="top",
            fontsize=7,
            color="C3",
            bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "C3", "alpha": 0.9},
        )
        ax.set(xlim=xlim, ylim=ylim)
        ax.set_title(f"lr {lr}: x {xs[0]:.2f} -> {xs[-1]:.3g} in {steps} steps", fontsize=9)
    return finish(fig, path, result)


def roller_coaster(seed: int = 42, steps: int = 60, lr: float = 0.1) -> dict[str, Any]:
    """The book's speed-of-a-roller-coaster example: fit a*u**2 + b*u + c to noisy speeds by SGD (MSE, autograd).

    u is time standardised, (t - mean) / std: on the raw t = 0..19 the gradient for a is ~400x
    the one for c, so no single lr fits both (the book's lr 1e-5 stalls at an MSE ~677).
    Returns {"t", "u", "speed", "fitted": (20,) speed of the final fit, "losses": [MSE after 0..steps
    steps], "params": [[a, b, c] after 0..steps steps], "final_params", "lr", "steps", "t_mean", "t_std"}.
    One seeded generator draws the noise, then the start: same seed, same numbers.
    """
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(0, 20).float()  # seconds
    speed = torch.randn(20, generator=generator) * NOISE_STD + 0.75 * (t - 9.5) ** 2 + 1
    params = torch.randn(3, generator=generator).requires_grad_()
    t_mean, t_std = float(t.mean()), float(t.std())
    u = (t - t_mean) / t_std  # in [-1.6, 1.6]: u**2, u and 1 are on one scale
    losses, history = [], []
    for step in range(steps + 1):
        a, b, c = params
        loss = ((a * u**2 + b * u + c - speed) ** 2).mean()  # MSE, in (speed units)^2
        losses.append(loss.item())
        history.append(params.detach().tolist())
        if step < steps:
            loss.backward()
            with torch.no_grad():
                params -= lr * cast(torch.Tensor, params.grad)  # the step: against the gradient
            params.grad = None
    a, b, c = history[-1]
    return {
        "t": t,
        "u": u,
        "speed": speed,
        "fitted": a * u**2 + b * u + c,
        "losses": losses,
        "params": history,
        "final_params": history[-1],
        "lr": lr,
        "steps": steps,
        "t_mean": t_mean,
        "t_std": t_std,
    }


def plot_roller_coaster(
    seed: int = 42, steps: int = 60, lr: float = 0.1, *, path: str | Path | None = None
) -> DigitlabFigure:
    """The data with the fit after a few steps (0, 2, 10, all) and the MSE per step (log scale, noise level marked).

    `.values`: roller_coaster's dict.
    """
    fit = roller_coaster(seed, steps, lr)
    t, u, shown = fit["t"], fit["u"], sorted({s for s in (0, 2, 10, steps) if s <= steps})
    fig, axes = new_figure(1, 2, panel=(4.0, 3.2))
    data_ax, loss_ax = axes[0]
    data_ax.scatter(t, fit["speed"], color="black", s=12, label="speed", zorder=3)
    for k, step in enumerate(shown):
        a, b, c = fit["params"][step]
        data_ax.plot(t, a * u**2 + b * u + c, color=f"C{k}", label=f"step {step}")
    data_ax.legend(fontsize=7)
    data_ax.set_xlabel(f"time t (fitted on u = (t - {fit['t_mean']:g}) / {fit['t_std']:.2f})", fontsize=8)
    data_ax.set_title(f"a*u²+b*u+c by SGD: lr {lr:g}, {steps} steps", fontsize=9)
    loss_ax.plot(range(steps + 1), fit["losses"], "o-", markersize=2)
    loss_ax.axhline(NOISE_STD**2, color="grey", linestyle="--", linewidth=1, label=f"noise variance {NOISE_STD**2:g}")
    loss_ax.set_yscale("log")
    loss_ax.set_xlabel("step")
    loss_ax.legend(fontsize=7)
    loss_ax.set_title(f"MSE by step: {fit['losses'][0]:.0f} -> {fit['losses'][-1]:.1f}", fontsize=9)
    return finish(fig, path, fit)


def plot_function(
    f: Any,
    tx: str | None = None,
    ty: str | None = None,
    title: str | None = None,
    min: float = -2,
    max: float = 2,
    figsize: tuple[float, float] = (6, 4),
) -> DigitlabFigure:
    """fastbook's `plot_function(f, 'x', 'x**2')`: f on 100 points of [min, max], axes labelled.

    `.values`: {"x", "y"}, (100,) tensors.
    """
    x = torch.linspace(min, max, 100)
    with torch.no_grad():
        y = torch.as_tensor(f(x))
    fig, axes = new_figure(1, 1, panel=figsize)
    ax = axes[0][0]
    ax.plot(x.numpy(), y.numpy())
    if tx is not None:
        ax.set_xlabel(tx)
    if ty is not None:
        ax.set_ylabel(ty)
    if title is not None:
        ax.set_title(title)
    return finish(fig, None, {"x": x, "y": y})
