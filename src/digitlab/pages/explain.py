"""The chapter's ideas drawn from the user's own data: `digitlab explain`.

Writes PNGs and one self-contained explain.html: a digit as numbers, the ideal digits, a digit
the baseline classifies right against each ideal (the L1 and RMSE distances), one it gets wrong
(labelled so, when there is one), where the baseline errs, the sigmoid and ReLU, SGD on a
quadratic at a good and a too-large learning rate, and the roller coaster.
"""

from __future__ import annotations

import html
from pathlib import Path

from ..baseline import PixelSimilarity
from ..config import Settings
from ..core.outputs import check_owned_folder, make_folder
from ..core.progress import Log
from ..data.digits import Digits
from ..data.loading import train_and_valid
from ..errors import DigitlabError
from ..plots import chapter, sgd
from ..plots.pixels import pixel_table_html, plot_pixel_table
from ..reading.crops import describe_crop
from .html import embedded_png, page

PICTURE_CROP = "centre"  # the PNG table: the middle 14x14, where the strokes are
BOOK_CROP = "4:15,4:22"  # the HTML table: the book's im3[4:15, 4:22]


def pick_examples(model: PixelSimilarity, digits: Digits, skip: int | None = None) -> tuple[int | None, int | None]:
    """(index of the first digit the baseline classifies right, of the first it gets wrong), other than `skip`.

    None where there is no such digit.
    """
    right = (model.predict(digits.images) == digits.labels).tolist()

    def first(wanted: bool) -> int | None:
        return next((i for i, ok in enumerate(right) if ok == wanted and i != skip), None)

    return first(True), first(False)


def _against(model: PixelSimilarity, digits: Digits, index: int, out: Path, name: str) -> tuple[str, str]:
    """Draw digit `index` against every ideal into out/name; return (verdict words, <img>)."""
    label = digits.classes[int(digits.labels[index])]
    predicted = digits.classes[int(model.predict(digits.images[index : index + 1])[0])]
    verdict = "classified right" if predicted == label else f"misclassified as {predicted}"
    title = f"validation digit #{index}: a {label}, {verdict} by the {model.metric.upper()} baseline"
    chapter.plot_against_ideals(digits.images[index], model.ideals, model.classes, title=title, path=out / name)
    outcome = "classifies it right" if predicted == label else f"misclassifies it as {predicted}"
    words = (
        f"Validation digit #{index} is a {label}; it is nearest to the ideal {predicted} by "
        f"{model.metric.upper()}, so the baseline {outcome}."
    )
    return words, embedded_png(out / name, title)


# What write_explain puts in its folder: a folder holding anything else is not written into
EXPLAIN_FILES = frozenset(
    {
        "explain.html",
        "pixels.png",
        "ideal_digits.png",
        "against_ideals.png",
        "against_ideals_misclassified.png",
        "distance_histograms.png",
        "activations.png",
        "sgd_quadratic.png",
        "roller_coaster.png",
    }
)


def write_explain(data: str, out: Path, settings: Settings, log: Log, index: int | None = None) -> Path:
    """Draw every chapter figure for `data` into `out`; return the path of out/explain.html.

    index: the validation digit to take apart (default: the first one the baseline classifies right).
    """
    check_owned_folder(out, "--out", EXPLAIN_FILES)  # before the data: a wrong --out costs nothing
    dataset, valid, _ = train_and_valid(data, None, settings, log)
    make_folder(out, "--out")
    model = PixelSimilarity.fit(dataset.train)
    if index is not None and not -len(valid) <= index < len(valid):
        raise DigitlabError(f"--index {index} is out of range: the validation set has {len(valid):,} images")
    if index is None:
        index = pick_examples(model, valid)[0]
    index = 0 if index is None else index % len(valid)  # none right: the first digit, labelled as misclassified
    sections = [*_pixel_sections(model, dataset.classes, valid, index, out), *_sgd_sections(out)]
    body = "".join(f"<h2>{html.escape(t)}</h2><p>{html.escape(e)}</p>{b}" for t, e, b in sections)
    return page(out / "explain.html", f"digitlab explain: {data}", f"<h1>Chapter 4 on {html.escape(data)}</h1>{body}")


Section = tuple[str, str, str]  # (title, explanation, html body)


def _pixel_sections(
    model: PixelSimilarity, classes: tuple[str, ...], valid: Digits, index: int, out: Path
) -> list[Section]:
    """A digit as numbers, the ideal digits, distances to them, a digit the baseline gets wrong, the histograms."""
    digit, label = valid.images[index], valid.classes[int(valid.labels[index])]
    sections: list[Section] = []

    shape = tuple(digit.shape)
    picture, book = describe_crop(PICTURE_CROP, shape), describe_crop(BOOK_CROP, shape)
    plot_pixel_table(digit, PICTURE_CROP, f"a {label}: {picture}", path=out / "pixels.png")
    sections.append(
        (
            "An image is a table of numbers",
            f"Each pixel is a number from 0 (background) to 255 (ink). Validation digit #{index}, a {label}.",
            f"<p>The centre of the image ({picture}):</p>"
            + embedded_png(out / "pixels.png", "pixel table")
            + f"<p>The book's view, im3[4:15, 4:22] ({book}):</p>"
            + pixel_table_html(digit, BOOK_CROP),
        )
    )
    ink = chapter.plot_ideal_digits(model.ideals, classes, path=out / "ideal_digits.png").values
    sections.append(
        (
            "The ideal digits",
            "The mean of every training image of each class: the pixel-similarity "
            "baseline predicts the class whose ideal digit is closest. Mean ink per ideal digit: "
            + ", ".join(f"{c}: {v:.3f}" for c, v in ink.items()),
            embedded_png(out / "ideal_digits.png", "ideal digits"),
        )
    )
    words, image = _against(model, valid, index, out, "against_ideals.png")
    sections.append(
        (
            "How far is this digit from each ideal?",
            "L1 is the mean absolute difference, RMSE the root of the mean squared difference. " + words,
            image,
        )
    )
    wrong = pick_examples(model, valid, skip=index)[1]
    if wrong is not None:
        words, image = _against(model, valid, wrong, out, "against_ideals_misclassified.png")
        sections.append(("A digit the baseline gets wrong", words, image))
    chapter.plot_distance_histograms(model, valid, path=out / "distance_histograms.png")
    sections.append(
        (
            "Where the baseline errs",
            "For the validation digits of each class, the distance to every "
            "ideal digit: where the histograms overlap, the nearest ideal is often the wrong one.",
            embedded_png(out / "distance_histograms.png", "distance histograms"),
        )
    )
    return sections


def _sgd_sections(out: Path) -> list[Section]:
    """Sigmoid and ReLU, SGD on a quadratic, the roller coaster fitted end to end."""
    sections: list[Section] = []
    sgd.plot_activations(path=out / "activations.png")
    sections.append(
        (
            "Sigmoid and ReLU",
            "The sigmoid squeezes any number into 0..1 (mnist_loss needs that) and "
            "flattens beyond about ±4; ReLU replaces negatives by 0 (the non-linearity of simple_net). "
            "Their derivatives drive SGD.",
            embedded_png(out / "activations.png", "activations"),
        )
    )
    paths = sgd.plot_sgd_quadratic(path=out / "sgd_quadratic.png").values
    sections.append(
        (
            "Stochastic gradient descent",
            "Each step moves against the gradient, scaled by the learning "
            "rate: "
            + "; ".join(f"lr {lr}: x ends at {xs[-1]:.3g}" for lr, xs in paths.items())
            + ". Too large a rate overshoots further every step: it diverges.",
            embedded_png(out / "sgd_quadratic.png", "sgd on a quadratic"),
        )
    )
    coaster = sgd.plot_roller_coaster(path=out / "roller_coaster.png").values
    sections.append(
        (
            "The roller coaster, end to end",
            "Noisy speeds over 20 seconds, a quadratic fitted by SGD "
            f"(lr {coaster['lr']:g}, {coaster['steps']} steps, on time standardised to mean 0 and std 1): "
            f"the mean squared error falls from {coaster['losses'][0]:.0f} to {coaster['losses'][-1]:.1f}, "
            f"about the noise's variance ({sgd.NOISE_STD**2:g}).",
            embedded_png(out / "roller_coaster.png", "roller coaster"),
        )
    )
    return sections
