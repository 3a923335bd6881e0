"""The chapter's ideas drawn from the user's own data: `digitlab explain`.

Writes PNGs and one self-contained explain.html: a digit as numbers, the ideal digits, one
digit against each ideal (the L1 and RMSE distances), where the baseline errs, the sigmoid and
ReLU, SGD on a quadratic at a good and a too-large learning rate, and the roller coaster.
"""

from __future__ import annotations

import html
from pathlib import Path

from .baseline import PixelSimilarity
from .config import Settings
from .loading import train_and_valid
from .plots import chapter
from .progress import Log
from .report import STYLE, _img
from .show import save_pixel_png


def write_explain(data: str, out: Path, settings: Settings, log: Log, index: int = 0) -> Path:
    """Draw every chapter figure for `data` into `out`; return the path of out/explain.html."""
    dataset, valid, _ = train_and_valid(data, None, settings, log)
    out.mkdir(parents=True, exist_ok=True)
    model = PixelSimilarity.fit(dataset.train)
    digit, label = valid.images[index], valid.classes[int(valid.labels[index])]
    sections: list[tuple[str, str, str]] = []  # (title, explanation, html body)

    save_pixel_png(digit, str(out / "pixels.png"), chapter.resolve_crop("centre"), f"a {label}, rows and columns 7-20")
    sections.append(("An image is a table of numbers",
                     "Each pixel is a number from 0 (background) to 255 (ink). The centre of the image:",
                     _img(out / "pixels.png", "pixel table") + chapter.pixel_table_html(digit, "top-left")))
    ink = chapter.plot_ideal_digits(model.ideals, dataset.classes, out / "ideal_digits.png")
    sections.append(("The ideal digits", "The mean of every training image of each class: the pixel-similarity "
                     "baseline predicts the class whose ideal digit is closest. Mean ink per ideal digit: "
                     + ", ".join(f"{c}: {v:.3f}" for c, v in ink.items()), _img(out / "ideal_digits.png", "ideal digits")))
    distances = chapter.plot_against_ideals(digit, model.ideals, dataset.classes, out / "against_ideals.png")
    nearest = min(distances, key=lambda c: distances[c]["l1"])
    sections.append(("How far is this digit from each ideal?",
                     f"L1 is the mean absolute difference, RMSE the root of the mean squared difference. This {label} "
                     f"is nearest to the ideal {nearest} by L1.", _img(out / "against_ideals.png", "distances")))
    chapter.plot_distance_histograms(model, valid, out / "distance_histograms.png")
    sections.append(("Where the baseline errs", "For the validation digits of each class, the distance to every "
                     "ideal digit: where the histograms overlap, the nearest ideal is often the wrong one.",
                     _img(out / "distance_histograms.png", "distance histograms")))
    chapter.plot_activations(out / "activations.png")
    sections.append(("Sigmoid and ReLU", "The sigmoid squeezes any number into 0..1 (mnist_loss needs that); ReLU "
                     "replaces negatives by 0 (the non-linearity of simple_net). Their derivatives drive SGD.",
                     _img(out / "activations.png", "activations")))
    paths = chapter.plot_sgd_quadratic(out / "sgd_quadratic.png")
    sections.append(("Stochastic gradient descent", "Each step moves against the gradient, scaled by the learning "
                     "rate: " + "; ".join(f"lr {lr}: x ends at {xs[-1]:.3g}" for lr, xs in paths.items())
                     + ". Too large a rate overshoots further every step: it diverges.",
                     _img(out / "sgd_quadratic.png", "sgd on a quadratic")))
    coaster = chapter.plot_roller_coaster(out / "roller_coaster.png")
    sections.append(("The roller coaster, end to end", "Noisy speeds over 20 seconds, a quadratic fitted by SGD: "
                     f"the loss falls from {float(coaster['losses'][0]):.0f} to {float(coaster['losses'][-1]):.0f}.",
                     _img(out / "roller_coaster.png", "roller coaster")))

    body = "".join(f"<h2>{html.escape(t)}</h2><p>{html.escape(e)}</p>{b}" for t, e, b in sections)
    page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>digitlab explain: {html.escape(data)}'
            f"</title><style>{STYLE}</style></head><body><h1>Chapter 4 on {html.escape(data)}</h1>{body}</body></html>")
    path = out / "explain.html"
    path.write_text(page, encoding="utf-8")
    return path
