"""What `digitlab predict --show` draws: each input next to the 28x28 digit the model read."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import DigitlabError
from ..reading.preprocessing import DEEP_MODES, stretch_to_8bit
from .common import DigitlabFigure, finish, new_figure

THUMBNAIL = 160  # inputs are drawn at most this many pixels a side


def thumbnail(image: Image.Image, side: int = THUMBNAIL) -> Image.Image:
    """A small RGBA copy of an input (16-bit and float images stretched to 8 bits, as to_mnist reads them)."""
    small = image.copy()
    small.thumbnail((side, side))
    if small.mode not in DEEP_MODES:
        try:
            return small.convert("RGBA")
        except ValueError:  # a mode Pillow cannot turn into colours directly
            pass
    return Image.fromarray(stretch_to_8bit(small).astype(np.uint8)).convert("RGBA")


def plot_predictions(
    inputs: Sequence[Image.Image],
    digits: Sequence[torch.Tensor],
    names: Sequence[str],
    labels: Sequence[str],
    probabilities: Sequence[float],
    *,
    path: str | Path | None = None,
) -> DigitlabFigure:
    """A row per image: the input as given (a `thumbnail`), and the (28, 28) uint8 digit the model read,
    titled with the predicted label and its probability. `.values`: {"titles": the right-hand titles}."""
    if not inputs or not len(inputs) == len(digits) == len(names) == len(labels) == len(probabilities):
        raise DigitlabError("plot_predictions needs as many inputs, digits, names, labels and probabilities (>= 1)")
    fig, axes = new_figure(len(inputs), 2, panel=(2.5, 2.3))  # no pyplot: nothing global, nothing to close
    titles = [f"the model saw this: {label} ({p:.0%})" for label, p in zip(labels, probabilities)]
    for row, (shown, digit, name, title) in enumerate(zip(inputs, digits, names, titles)):
        left, right = axes[row]
        left.imshow(shown)
        left.set_title(Path(name).name[-32:], fontsize=9)
        # drawn as digitlab (and the book) draw every MNIST digit: high values dark, ink on a page
        right.imshow(digit.numpy(), cmap="Greys", vmin=0, vmax=255)
        right.set_title(title, fontsize=9)
        for ax in (left, right):
            ax.set_xticks([])
            ax.set_yticks([])
    return finish(fig, path, {"titles": titles})  # a DigitlabError names the path when it cannot be written
