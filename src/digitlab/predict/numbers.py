"""A picture read as a whole number: `find_digits` finds the digits, a `Predictor` reads each.

One code path for `digitlab predict` (with `--number`, or when a picture holds several digits)
and the web API:

    reading = read_number(predictor, load_image("meter.jpg"))
    reading.number            # "2026"; lines top to bottom, separated by a space
    reading.digits[0].box     # (x0, y0, x1, y1) in the picture's pixels (after EXIF turning)
    reading.as_json()         # {"number": ..., "digits": [{"box", "line", "label", "probability", "reason"}]}
    read_number(predictor, image, lines=LineChecker.load("runs/lines"))   # checked by a line reader

The model also judges where touching digits are cut (see `find_digits`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
from PIL import Image

from ..reading.readings import Judge, Judgement
from ..reading.segment import MAX_DIGITS, FoundDigit, find_page
from .abstain import NOT_A_DIGIT
from .checked import LineCheck, checked_reading
from .lines import LineChecker
from .predictor import Predictions, Predictor

NO_GUARD = nullcontext()


@dataclass(frozen=True, repr=False)
class NumberReading:
    digits: list[FoundDigit]  # in reading order
    # runs the model on the digits, when first asked: a picture of one mark, read as one digit by
    # `predict` and the page (to_mnist), never needs it
    predict: Callable[[], Predictions]
    checks: list[LineCheck] | None = None  # with a line reader: how each line was read by both

    @cached_property
    def predictions(self) -> Predictions:
        """One row per digit."""
        return self.predict()

    def __repr__(self) -> str:
        """The number it reads and where its digits are, not the pictures (runs the model if not yet run)."""
        boxes = ", ".join(str(tuple(d.box)) for d in self.digits[:6]) + (", ..." if len(self.digits) > 6 else "")
        return f"NumberReading({self.number!r}: {len(self.digits)} digits, boxes {boxes})"

    @property
    def number(self) -> str:
        """The digits' labels, a space between lines."""
        labels = self.predictions.labels
        return "".join(
            (" " if i and digit.line != self.digits[i - 1].line else "") + label
            for i, (digit, label) in enumerate(zip(self.digits, labels))
        )

    @property
    def looks_like_a_number(self) -> bool:
        """Several marks that read as a number unasked: more than half of them look like digits (not a
        face's eyes and mouth) and none is drawn inside another (a face's outline; a number's digits
        sit side by side)."""
        boxes = [d.box for d in self.digits]
        if len(boxes) < 2 or any(i != j and _inside(a, b) for i, a in enumerate(boxes) for j, b in enumerate(boxes)):
            return False  # decided without running the model
        reasons = self.predictions.reasons or []
        digit_like = len(boxes) - sum(reason == NOT_A_DIGIT for reason in reasons)
        return digit_like > len(boxes) / 2

    @property
    def box(self) -> tuple[int, int, int, int]:
        """The box around all the marks: the picture's ink, read as one digit."""
        return (
            min(d.box[0] for d in self.digits),
            min(d.box[1] for d in self.digits),
            max(d.box[2] for d in self.digits),
            max(d.box[3] for d in self.digits),
        )

    def as_json(self, images: Callable[[torch.Tensor], str] | None = None) -> dict[str, Any]:
        """{"number", "digits": [{"box", "line", "label", "probability", "reason"}]}; images: a function of
        a (28, 28) digit whose result goes in each digit's "image_png_base64". A digit keeps its likeliest
        label; "reason" says where the model would abstain on it alone ("not sure: 4 or 9?"), else null."""
        digits = []
        reasons = self.predictions.reasons or [None] * len(self.digits)
        for i, (digit, label) in enumerate(zip(self.digits, self.predictions.labels)):
            entry: dict[str, Any] = {
                "box": list(digit.box),
                "line": digit.line,
                "label": label,
                "probability": self.predictions.top_k[i][0][1],  # the label's shown (rounded-down) probability
                "reason": reasons[i],
            }
            if images is not None:
                entry["image_png_base64"] = images(digit.image)
            digits.append(entry)
        answer: dict[str, Any] = {"number": self.number, "digits": digits}
        if self.checks is not None:
            answer["lines"] = [check.as_json() for check in self.checks]
            answer["agreed"] = all(check.agreed for check in self.checks)
        return answer


def confidence(predictor: Predictor, guard: AbstractContextManager[Any] = NO_GUARD) -> Judge:
    """A judge for find_digits: (N, 28, 28) uint8 -> the model's top probability of each and, when the
    model has a "not a digit" check, each one's distance to the nearest class of its training digits in
    units of that check's threshold (a model saved without: the probabilities alone).
    guard: held while the model runs (the server's lock: one batch at a time)."""
    abstainer = predictor.abstainer
    threshold = abstainer.calibration.max_distance

    def judge(images: torch.Tensor) -> Judgement:
        with guard:
            if abstainer.stats is None or threshold is None:
                return Judgement(predictor.predict(images, k=1, abstain=False).probabilities.max(dim=1).values)
            outputs, features = predictor.outputs_and_features(images)  # (N, C) and the last layer's inputs (N, D)
            sure = predictor.predict(images, k=1, outputs=outputs, abstain=False).probabilities.max(dim=1).values
            return Judgement(sure, abstainer.stats.distances(features) / threshold)

    return judge


def read_number(
    predictor: Predictor,
    image: Image.Image,
    *,
    source: str = "image",
    k: int = 3,
    max_digits: int = MAX_DIGITS,
    guard: AbstractContextManager[Any] = NO_GUARD,
    cut_lone: bool = True,
    lines: LineChecker | None = None,
) -> NumberReading:
    """Every digit of a picture, read; DataError (naming `source`) when none is found or too many.
    guard: held while the model runs (not while the picture is searched; the digits are read when
    `.predictions` is first asked for); cut_lone: as find_digits; lines: a line reader that reads each
    line whole and checks the digits (`digitlab.predict.checked`: where the two disagree, "not sure")."""
    judge = confidence(predictor, guard)
    page = find_page(
        image, source=source, max_digits=max_digits, judge=judge, cut_lone=cut_lone, lines=lines is not None
    )
    if lines is not None:
        with guard:
            found, predictions, checks = checked_reading(predictor, lines, page, k)
        return NumberReading(found, lambda: predictions, checks)
    digits = page.digits

    def predict() -> Predictions:
        with guard:
            return predictor.predict(torch.stack([d.image for d in digits]), k=k)

    return NumberReading(digits, predict)


def read_if_number(
    predictor: Predictor,
    image: Image.Image,
    *,
    source: str = "image",
    number: bool = False,
    k: int = 3,
    guard: AbstractContextManager[Any] = NO_GUARD,
    lines: LineChecker | None = None,
) -> NumberReading | None:
    """The picture read as a number when `number` is set or when it holds several digits; None when
    it holds one digit (then read it as one: `to_mnist`, as before), and a picture of one mark
    (however wide) holds one digit unless `number`. Unasked, marks of which half or more do not look
    like digits (a face's eyes and mouth), or marks drawn inside another (a face's outline), are not
    a number either: read as one picture, the model can say it is not a digit. DataError as `read_number`."""
    reading = read_number(predictor, image, source=source, k=k, guard=guard, cut_lone=number, lines=lines)
    if number:
        return reading
    return reading if reading.looks_like_a_number else None


def _inside(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Box a lies within box b: a mark drawn inside another (a face's eye in its outline), never the
    next digit of a number."""
    return b[0] <= a[0] and b[1] <= a[1] and a[2] <= b[2] and a[3] <= b[3]
