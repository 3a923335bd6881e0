"""Two readers of a number checking each other: the digits cut one by one and read by the digit model
(`find_page`), and each line read whole by a line reader (`LineChecker`).

For each line:
- both read the same digits: agreed;
- the line reader sees a different number of digits (cutting missed where two touch, or split one): the
  line is cut again where the line reader sees its digits (`parts_at`) and the digit model reads those
  parts; when it then reads what the line reader read, and doubts none of them (no "not sure", no "not a
  digit"), the parts replace the first cut and the line is agreed;
- otherwise they disagree, and every digit where the two readings differ is marked "not sure". When both
  read as many digits, a differing digit shows the digit that the two readers' probabilities multiplied
  make likeliest (a product of experts: each reader's probabilities of 0..9 for that digit; the line
  reader's digit, with its probability beside it, where that is the one); when they read different
  counts, the first cut and the digit model's labels stay (taking the line reader's parts when the digit
  model did not then agree, or was merely surer of them, was right no more often on 4-digit photos of
  test digits: BENCHMARKS.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ..line_reader import LineReading
from ..reading.lines import LinePicture
from ..reading.segment import FoundDigit, FoundPage
from .lines import LineChecker, parts_at
from .predictor import Predictions, Predictor, shown_probability


@dataclass(frozen=True)
class LineCheck:
    """How one line was read by both readers."""

    line: int  # 0 = the top line
    digits: str  # the digit model's reading, after re-cutting where it agreed
    reader: str  # the line reader's
    reader_probability: float  # the product of its digits' probabilities
    agreed: bool
    recut: bool  # the line was cut again where the line reader sees its digits

    def as_json(self) -> dict[str, object]:
        return {
            "line": self.line,
            "digits": self.digits,
            "line_reader": self.reader,
            "line_reader_probability": round(self.reader_probability, 6),
            "agreed": self.agreed,
            "recut": self.recut,
        }


def not_sure(reader: str, digits: str) -> str:
    return f"not sure: the line reader reads {reader or 'no digit'} here, the digits one by one {digits}"


def not_sure_which(digit: str, p_digit: float, reader: str, p_reader: float) -> str:
    return f"not sure: the digit model reads {digit} ({p_digit:.0%}), the line reader {reader} ({p_reader:.0%})"


# a digit's mark ("not sure: ...", or None) and the line reader's digit and probability where it is shown instead
Verdict = tuple[str | None, tuple[str, float] | None]


@dataclass(frozen=True)
class _Line:
    """One line as the digit model reads it, after re-cutting where that made it agree."""

    digits: list[FoundDigit]
    predictions: Predictions  # the digit model's, of these digits
    recut: bool

    @property
    def labels(self) -> str:
        return "".join(self.predictions.labels)

    @property
    def sure(self) -> list[float]:
        """The digit model's top probability of each digit."""
        return [top[0][1] for top in self.predictions.top_k]


def _settled(predictor: Predictor, first: _Line, line: LinePicture, reading: LineReading, k: int) -> _Line:
    if first.labels == reading.digits or not reading.digits or len(reading.digits) == len(first.digits):
        return first
    parts = parts_at(line, reading, first.digits[0].line)
    if not parts:
        return first
    again = predictor.predict(torch.stack([d.image for d in parts]), k=k)
    if "".join(again.labels) != reading.digits or any(again.reasons or []):
        return first  # read otherwise, or a part the digit model doubts (a sliver read as a 1, say)
    return _Line(parts, again, True)


def _verdicts(line: _Line, reading: LineReading) -> list[Verdict]:
    """Each digit's mark ("not sure", or None) and, where the line reader's digit is shown instead, that
    digit and its probability. Both read as many digits: where they differ, the digit likeliest under the
    product of the two readers' probabilities (`_pooled`); the line reader's is shown where that is its own.
    Whole distributions, not each reader's top probability: label smoothing caps the digit model's near 0.9
    while the line reader's reach 1, so "the surer one" would lean on the line reader (BENCHMARKS.md)."""
    if line.labels == reading.digits:
        return [(None, None)] * len(line.labels)
    if len(line.labels) != len(reading.digits):
        return [(not_sure(reading.digits, line.labels), None)] * len(line.labels)
    out: list[Verdict] = []
    for i, (a, p_a, b, p_b) in enumerate(zip(line.labels, line.sure, reading.digits, reading.probabilities)):
        if a == b:
            out.append((None, None))
            continue
        pooled = _pooled(line.predictions.probabilities[i], line.predictions.classes, reading.distribution(i))
        out.append((not_sure_which(a, p_a, b, p_b), (b, p_b) if pooled == b else None))
    return out


def _pooled(digit_model: torch.Tensor, classes: tuple[str, ...], line_reader: tuple[float, ...]) -> str:
    """The class likeliest under both readers at once: argmax of p_digit_model(c) x p_line_reader(c).
    digit_model: (C,) over `classes`; line_reader: the probabilities of 0..9 (a class that is not a digit: 0)."""
    theirs = torch.tensor([line_reader[int(c)] if c.isdigit() and len(c) == 1 else 0.0 for c in classes])
    score = torch.log(digit_model.double().clamp_min(1e-12)) + torch.log(theirs.double().clamp_min(1e-12))
    return classes[int(score.argmax())]


def checked_reading(
    predictor: Predictor, checker: LineChecker, page: FoundPage, k: int = 3
) -> tuple[list[FoundDigit], Predictions, list[LineCheck]]:
    """The page's digits as both readers settle them, their predictions (the digit model's, but where the
    two read as many digits and the product of their probabilities favours the line reader's digit: its digit
    first, with its probability; every digit where they differ marked "not sure") and each line's check."""
    cut = predictor.predict(torch.stack([d.image for d in page.digits]), k=k)  # every digit, once
    lines: list[_Line] = []
    verdicts: list[Verdict] = []
    checks = []
    for number, reading in enumerate(checker.read(page.lines)):
        rows = [i for i, d in enumerate(page.digits) if d.line == number]
        if not rows:
            continue
        first = _Line([page.digits[i] for i in rows], cut.take(rows), False)
        line = _settled(predictor, first, page.lines[number], reading, k)
        agreed = line.labels == reading.digits
        checks.append(LineCheck(number, line.labels, reading.digits, reading.probability, agreed, line.recut))
        lines.append(line)
        verdicts += _verdicts(line, reading)
    digits = [digit for line in lines for digit in line.digits]
    return digits, _overruled(Predictions.joined([line.predictions for line in lines]), verdicts), checks


def _overruled(predictions: Predictions, verdicts: list[Verdict]) -> Predictions:
    """The digit model's predictions with the marks as reasons and the line reader's digits first where shown."""
    indices, top_k = predictions.indices.clone(), [list(top) for top in predictions.top_k]
    reasons = list(predictions.reasons or [None] * len(indices))
    for i, (mark, shown) in enumerate(verdicts):
        reasons[i] = mark or reasons[i]
        if shown is not None and shown[0] in predictions.classes:
            indices[i] = predictions.classes.index(shown[0])
            others = [entry for entry in top_k[i] if entry[0] != shown[0]]
            top_k[i] = [(shown[0], shown_probability(shown[1])), *others][: len(top_k[i])]
    return replace(predictions, indices=indices, top_k=top_k, reasons=reasons)
