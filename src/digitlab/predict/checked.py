"""Two readers of a number checking each other: the digits cut one by one and read by the digit model
(`find_page`), and each line read whole by a line reader (`LineChecker`).

For each line:
- both read the same digits: agreed;
- the line reader sees a different number of digits (cutting missed where two touch, or split one): the
  line is cut again where the line reader sees its digits (`parts_at`) and the digit model reads those
  parts; when it then reads what the line reader read, the parts replace the first cut and the line is
  agreed (two readings, one of them the digit model's, give the same digits);
- otherwise they disagree: the first cut and the digit model's reading of it are kept (on 4-digit photos
  of test digits, taking the line reader's parts when the digit model did not then agree, or when it was
  surer of them, was right no more often: BENCHMARKS.md), and every digit where the two readings differ
  is marked "not sure", naming the line reader's reading.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ..reading.segment import FoundDigit, FoundPage
from .lines import LineChecker, parts_at
from .predictor import Predictions, Predictor


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


def checked_reading(
    predictor: Predictor, checker: LineChecker, page: FoundPage, k: int = 3
) -> tuple[list[FoundDigit], Predictions, list[LineCheck]]:
    """The page's digits as both readers settle them, the digit model's predictions of them (reasons
    marked where they disagree) and each line's check."""
    readings = checker.read(page.lines)
    digits: list[FoundDigit] = []
    marks: list[str | None] = []
    checks = []
    for number, reading in enumerate(readings):
        first = [d for d in page.digits if d.line == number]
        if not first:
            continue
        cut = predictor.predict(torch.stack([d.image for d in first]), k=1, abstain=False)
        line_digits, labels, recut = first, "".join(cut.labels), False
        if labels != reading.digits and reading.digits and len(reading.digits) != len(first):
            parts = parts_at(page.lines[number], reading, number)
            if parts:
                again = predictor.predict(torch.stack([d.image for d in parts]), k=1, abstain=False)
                if "".join(again.labels) == reading.digits:
                    line_digits, labels, recut = parts, "".join(again.labels), True
        agreed = labels == reading.digits
        checks.append(LineCheck(number, labels, reading.digits, reading.probability, agreed, recut))
        digits += line_digits
        marks += _marks(labels, reading.digits, agreed)
    predictions = predictor.predict(torch.stack([d.image for d in digits]), k=k)
    reasons = [mark or reason for mark, reason in zip(marks, predictions.reasons or [None] * len(digits))]
    return digits, replace(predictions, reasons=reasons), checks


def _marks(labels: str, reader: str, agreed: bool) -> list[str | None]:
    """Each digit's "not sure" where the two readings differ: the digits that differ when both read as many
    digits, every digit of the line otherwise."""
    if agreed:
        return [None] * len(labels)
    reason = not_sure(reader, labels)
    if len(labels) == len(reader):
        return [reason if a != b else None for a, b in zip(labels, reader)]
    return [reason] * len(labels)
