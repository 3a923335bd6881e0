"""Two readers checking each other (`predict.checked`): agreement, a line cut again where the line reader
sees another count of digits, and "not sure" where they still differ. The line reader here is a stand-in
that reads what each test says, so that every branch is reached on purpose."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from digitlab.data.lines import COLUMN
from digitlab.line_reader import LineReading
from digitlab.predict.checked import checked_reading
from digitlab.predict.lines import LineChecker
from digitlab.predict.numbers import read_number
from digitlab.predict.predictor import Predictor
from digitlab.reading.preprocessing import centred_digit
from digitlab.reading.segment import FoundDigit, FoundPage, find_page


class Says(LineChecker):
    """A line reader that reads each line as told, its digits at the centres of the line's ink runs, each
    with probability `sure`; `also`: other digits' probabilities (the rest shared evenly), or None: no
    distributions (the reading's own default)."""

    def __init__(self, *texts: str, sure: float = 0.9, also: dict[str, float] | None = None) -> None:
        super().__init__(model=None, card={})  # type: ignore[arg-type]  # never runs a network
        self.texts, self.sure, self.also = texts, sure, also

    def distribution(self, digit: str) -> tuple[float, ...]:
        also = self.also or {}
        rest = (1 - self.sure - sum(also.values())) / (9 - len(also))
        return tuple(self.sure if str(d) == digit else also.get(str(d), rest) for d in range(10))

    def read(self, lines):
        readings = []
        for text, line in zip(self.texts, lines):
            ink = line.picture.max(axis=0) > 0
            starts = np.nonzero(np.diff(np.concatenate([[0], ink.astype(int)])) == 1)[0]
            ends = np.nonzero(np.diff(np.concatenate([ink.astype(int), [0]])) == -1)[0]
            centres = [round((a + b) / 2 / COLUMN) for a, b in zip(starts, ends)]
            if len(centres) != len(text):  # one run of ink: the digits evenly along it
                step = (ends[-1] - starts[0]) / len(text)
                centres = [round((starts[0] + (i + 0.5) * step) / COLUMN) for i in range(len(text))]
            dists = () if self.also is None else tuple(self.distribution(d) for d in text)
            readings.append(LineReading(text, (self.sure,) * len(text), tuple((c, c) for c in centres), dists))
        return readings


@pytest.fixture(scope="module")
def predictor(digit_cnn):
    return Predictor.load(digit_cnn)


def test_agreeing_readers_mark_nothing(predictor, number_picture, clear_digits):
    photo, _ = number_picture(["2026"], clear_digits)
    reading = read_number(predictor, photo, lines=Says("2026"))
    answer = reading.as_json()
    assert answer["number"] == "2026" and answer["agreed"] is True
    assert answer["lines"] == [
        {
            "line": 0,
            "digits": "2026",
            "line_reader": "2026",
            "line_reader_probability": pytest.approx(0.9**4),
            "agreed": True,
            "recut": False,
        }
    ]
    assert all(d["reason"] is None or "not sure: the line reader" not in d["reason"] for d in answer["digits"])


@pytest.mark.parametrize(
    ("gap", "sure", "also", "shown"),
    [
        (0.35, 0.5, None, "2026"),  # the line reader unsure of its 8: the digit model's clear 2 outweighs it
        (0.35, 0.999999, None, "2086"),  # the line reader all but certain: its 8, though the 2 stands alone
        (-0.02, 0.999999, None, "2086"),  # touching its neighbours: the same rule
        (-0.02, 0.6, {"2": 0.39}, "2026"),  # its 8 at 0.6, but 0.39 on 2: the 2 is likeliest to both at once
        (0.35, 0.6, {"2": 0.0}, "2086"),  # no chance of a 2 for the line reader: the digit model's 2 cannot win
    ],
)
def test_a_digit_read_otherwise_is_marked_and_shows_the_digit_both_readers_find_likeliest(
    gap, sure, also, shown, predictor, number_picture, clear_digits
):
    photo, _ = number_picture(["2026"], clear_digits, gap=gap)
    answer = read_number(predictor, photo, lines=Says("2086", sure=sure, also=also)).as_json()
    assert answer["lines"][0]["digits"] == "2026", "the test needs the digit model to read the picture right"
    assert answer["number"] == shown and answer["agreed"] is False
    reasons = [d["reason"] or "" for d in answer["digits"]]
    assert reasons[2].startswith("not sure: the digit model reads 2 (") and "the line reader 8" in reasons[2]
    assert not any("line reader" in r for r in reasons[:2] + reasons[3:])
    third = answer["digits"][2]
    assert third["label"] == shown[2] and (
        third["probability"] == sure if shown[2] == "8" else third["probability"] > 0.5
    )


def test_two_lines_are_checked_each_on_its_own(predictor, number_picture, clear_digits):
    photo, _ = number_picture(["31", "47"], clear_digits)
    answer = read_number(predictor, photo, lines=Says("31", "41")).as_json()
    assert answer["number"] == "31 47"
    assert [line["agreed"] for line in answer["lines"]] == [True, False]


def test_digits_cut_as_one_are_cut_again_where_the_line_reader_sees_two(predictor, number_picture, clear_digits):
    photo, boxes = number_picture(["38"], clear_digits)
    page = find_page(photo, lines=True)
    whole = torch.from_numpy(centred_digit(page.lines[0].picture.astype(np.float32)))
    merged = FoundPage([FoundDigit(page.lines[0].box, 0, whole)], page.lines)  # as if cutting had missed
    digits, predictions, checks = checked_reading(predictor, Says("38"), merged)
    assert predictions.labels == ["3", "8"] and checks[0].agreed and checks[0].recut
    assert predictions.reasons is not None and not any("line reader" in (r or "") for r in predictions.reasons)
    assert digits[0].box[2] <= boxes[1][0] + 10 and digits[1].box[0] >= boxes[0][2] - 10


def test_a_reader_seeing_digits_where_none_are_is_marked_not_sure(predictor, number_picture, clear_digits):
    photo, _ = number_picture(["38"], clear_digits)
    digits, predictions, checks = checked_reading(predictor, Says("381"), find_page(photo, lines=True))
    assert not checks[0].agreed
    assert predictions.reasons is not None and all("line reader reads 381" in (r or "") for r in predictions.reasons)
    assert len(digits) == 2  # the first cut: the digit model does not read the line reader's parts as 381
