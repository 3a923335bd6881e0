"""Figures for the chapter and for training runs: each a matplotlib Figure with its numbers in `.values`.

`from digitlab.plots import show_image, plot_roller_coaster, ...`: the names below load their
module (and matplotlib) on first use, so `import digitlab` stays fast. No function here touches
pyplot or sets a backend; in Jupyter figures show inline (plots.common).
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "common": ("DPI", "DigitlabFigure", "finish", "image_axis", "new_figure"),
    "images": ("show_image", "show_images"),
    "pixels": ("PixelTable", "pixel_table_html", "plot_pixel_table"),
    "chapter": ("plot_against_ideals", "plot_distance_histograms", "plot_ideal_digits"),
    "sgd": ("plot_activations", "plot_roller_coaster", "plot_sgd_quadratic", "roller_coaster", "sgd_quadratic"),
    "training": ("plot_loss_curves", "plot_lr_find", "plot_lr_schedule", "plot_recorder_loss"),
    "evaluation": ("plot_confusion_matrix", "plot_linear_weights", "plot_top_losses"),
    "predictions": ("plot_predictions", "thumbnail"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
