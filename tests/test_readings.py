"""`readings.choose`: which reading of a mark wins, with a stand-in judge whose every answer the test sets."""

from __future__ import annotations

import torch

from digitlab.readings import FAMILIAR, FLAGGED, Judgement, choose

WHOLE = [((0, 0, 100, 90), 1)]  # y0, x0, y1, x1: a mark 0.9 times as wide as high ("81" touching)
CUT = [((0, 0, 100, 40), 1), ((0, 45, 100, 90), 1)]  # in 2, each part as high as the mark
WIDE_WHOLE = [((0, 0, 100, 120), 1)]
WIDE_CUT = [((0, 0, 100, 50), 1), ((0, 60, 100, 120), 1)]


class Stand_in:
    """crop: each box a (28, 28) image filled with its number; the judge answers `says[box]`, (p, distance)."""

    def __init__(self, says: dict, with_distance: bool = True) -> None:
        self.boxes = list(says)
        self.says, self.with_distance, self.asked = says, with_distance, []

    def crop(self, box, label) -> torch.Tensor:
        return torch.full((28, 28), self.boxes.index(box), dtype=torch.uint8)

    def judge(self, images: torch.Tensor) -> Judgement:
        boxes = [self.boxes[int(image[0, 0])] for image in images]
        self.asked.append(boxes)
        p = torch.tensor([self.says[b][0] for b in boxes], dtype=torch.float64)
        d = torch.tensor([self.says[b][1] for b in boxes], dtype=torch.float64)
        return Judgement(p, d if self.with_distance else None)


def boxes(reading) -> list:
    return [box for box, _ in reading]


def test_a_narrow_mark_that_looks_like_a_digit_is_read_whole_without_judging_its_cuts():
    says = {WHOLE[0][0]: (0.5, FLAGGED - 0.01), CUT[0][0]: (0.99, 0.1), CUT[1][0]: (0.99, 0.1)}
    model = Stand_in(says)
    assert boxes(choose([WHOLE, CUT], model.crop, model.judge, narrow=True)) == boxes(WHOLE)
    assert model.asked == [boxes(WHOLE)]  # the whole alone: one small model call per narrow mark
    old = Stand_in(says, with_distance=False)  # a model saved without "not a digit" statistics: as before
    assert boxes(choose([WHOLE, CUT], old.crop, old.judge, narrow=True)) == boxes(WHOLE)


def test_a_narrow_mark_flagged_as_no_digit_is_cut_when_its_parts_look_like_digits():
    familiar = {WHOLE[0][0]: (0.9, FLAGGED + 0.2), CUT[0][0]: (0.9, 0.1), CUT[1][0]: (0.9, FAMILIAR - 0.05)}
    model = Stand_in(familiar)
    assert boxes(choose([WHOLE, CUT], model.crop, model.judge, narrow=True)) == boxes(CUT)
    assert model.asked == [boxes(WHOLE), boxes(CUT)]
    strange = dict(familiar) | {CUT[1][0]: (0.99, FAMILIAR)}  # a part that looks like no digit either: whole
    model = Stand_in(strange)
    assert boxes(choose([WHOLE, CUT], model.crop, model.judge, narrow=True)) == boxes(WHOLE)


def test_a_whole_reading_far_from_the_training_digits_loses_to_familiar_parts():
    # the model is about as sure of the whole (a touching "41" read as a 4) as of the parts
    says = {WIDE_WHOLE[0][0]: (0.97, 2.0), WIDE_CUT[0][0]: (0.9, 1.0), WIDE_CUT[1][0]: (0.95, 0.2)}
    old = Stand_in(says, with_distance=False)
    assert boxes(choose([WIDE_WHOLE, WIDE_CUT], old.crop, old.judge)) == boxes(WIDE_WHOLE)  # probabilities alone
    model = Stand_in(says)
    assert boxes(choose([WIDE_WHOLE, WIDE_CUT], model.crop, model.judge)) == boxes(WIDE_CUT)
    assert model.asked == [boxes(WIDE_WHOLE) + boxes(WIDE_CUT)]  # one model call for all the readings
    near = dict(says) | {WIDE_WHOLE[0][0]: (0.97, FAMILIAR)}  # a whole that looks like a digit keeps winning
    model = Stand_in(near)
    assert boxes(choose([WIDE_WHOLE, WIDE_CUT], model.crop, model.judge)) == boxes(WIDE_WHOLE)
