"""Two readers of a number checking each other: the digits cut one by one and read by the digit model
(`find_page`), and each line read whole by a line reader (`LineChecker`).

For each line:
- both read the same digits: agreed;
- the line reader sees a different number of digits (cutting missed where two touch, or split one): the
  line is cut again where the line reader sees its digits (`parts_at`) and the digit model reads those
  parts; when it then reads what the line reader read, and doubts none of them (no "not sure", no "not a
  digit"), the parts replace the first cut and the line is agreed;
- otherwise they disagree, and every digit where the two readings differ is marked "not sure". When both
  read as many digits, a differing digit that touches a neighbour shows the surer reader's digit (its
  probability beside it), one standing alone the line reader's only where the digit model doubts it; when
  they read different counts, the first cut and the digit model's labels stay (taking the line
  reader's parts when the digit model did not then agree, or was merely surer of them, was right no more
  often on 4-digit photos of test digits: BENCHMARKS.md).
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

    @property
    def doubted(self) -> list[bool]:
        """Where the digit model abstains on the digit alone ("not sure", "not a digit")."""
        return [reason is not None for reason in self.predictions.reasons or [None] * len(self.digits)]


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
    digit and its probability. Both read as many digits: a digit that touches a neighbour (its 28x28 may
    hold the neighbour's ink) shows the surer reader's digit; a digit standing alone, which the digit model
    saw whole, shows the line reader's only where the digit model doubts it (its probabilities, capped by
    label smoothing, are not the line reader's: "surer" overruled it wrongly on lone digits)."""
    if line.labels == reading.digits:
        return [(None, None)] * len(line.labels)
    if len(line.labels) != len(reading.digits):
        return [(not_sure(reading.digits, line.labels), None)] * len(line.labels)
    out: list[Verdict] = []
    boxes = [d.box for d in line.digits]
    for i, (a, p_a, b, p_b) in enumerate(zip(line.labels, line.sure, reading.digits, reading.probabilities)):
        mark = None if a == b else not_sure_which(a, p_a, b, p_b)
        overrule = p_b > p_a if _touches(boxes, i) else line.doubted[i]
        out.append((mark, (b, p_b) if a != b and overrule else None))
    return out


def _touches(boxes: list[tuple[int, int, int, int]], i: int) -> bool:
    """Box i reaches its left or right neighbour's (x0, y0, x1, y1; x1 exclusive)."""
    return (i > 0 and boxes[i - 1][2] >= boxes[i][0]) or (i + 1 < len(boxes) and boxes[i][2] >= boxes[i + 1][0])


def checked_reading(
    predictor: Predictor, checker: LineChecker, page: FoundPage, k: int = 3
) -> tuple[list[FoundDigit], Predictions, list[LineCheck]]:
    """The page's digits as both readers settle them, their predictions (the digit model's, but where the
    two read as many digits and the line reader is surer of another: its digit first, with its probability;
    every digit where they differ marked "not sure") and each line's check."""
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
    """The digit model's predictions with the marks as reasons and the line reader's surer digits first."""
    indices, top_k = predictions.indices.clone(), [list(top) for top in predictions.top_k]
    reasons = list(predictions.reasons or [None] * len(indices))
    for i, (mark, surer) in enumerate(verdicts):
        reasons[i] = mark or reasons[i]
        if surer is not None and surer[0] in predictions.classes:
            indices[i] = predictions.classes.index(surer[0])
            others = [entry for entry in top_k[i] if entry[0] != surer[0]]
            top_k[i] = [(surer[0], shown_probability(surer[1])), *others][: len(top_k[i])]
    return replace(predictions, indices=indices, top_k=top_k, reasons=reasons)
