"""`readings.choose`: which reading of a mark wins, with a stand-in judge whose every answer the test sets."""

from __future__ import annotations

import torch

from digitlab.reading.readings import FAMILIAR, Judgement, choose

WHOLE = [((0, 0, 100, 120), 1)]  # y0, x0, y1, x1: a mark 1.2 times as wide as high (a touching "41")
CUT = [((0, 0, 100, 50), 1), ((0, 60, 100, 120), 1)]  # in 2, each part as high as the mark


class StandIn:
    """crop: each box a (28, 28) image filled with its number; the judge answers `says[box]`: (p, distance)."""

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


def read(says: dict, with_distance: bool = True) -> list:
    model = StandIn(says, with_distance)
    chosen = choose([WHOLE, CUT], model.crop, model.judge)
    assert model.asked == [[box for box, _ in WHOLE + CUT]]  # one model call for all the readings' parts
    return [box for box, _ in chosen]


def test_a_whole_reading_far_from_the_training_digits_loses_to_familiar_parts():
    # the model is surer of the whole (a touching "41" read as a 4) than of the parts together
    says = {WHOLE[0][0]: (0.97, 2.0), CUT[0][0]: (0.9, 1.0), CUT[1][0]: (0.95, 0.2)}
    assert read(says, with_distance=False) == [WHOLE[0][0]]  # a model without the statistics: as before
    assert read(says) == [box for box, _ in CUT]  # log scores: whole -0.03 - 0.375, parts -0.16 - 0.125


def test_a_whole_reading_that_looks_like_a_digit_keeps_winning():
    says = {WHOLE[0][0]: (0.97, FAMILIAR), CUT[0][0]: (0.9, 0.1), CUT[1][0]: (0.95, 0.1)}
    assert read(says) == [WHOLE[0][0]]
    far_parts = {WHOLE[0][0]: (0.9, 1.5), CUT[0][0]: (0.95, 3.0), CUT[1][0]: (0.95, 3.0)}  # odd pieces of a digit
    assert read(far_parts) == [WHOLE[0][0]]
    assert read(far_parts, with_distance=False) == [box for box, _ in CUT]


def test_one_reading_or_no_judge_is_the_first_reading_unjudged():
    model = StandIn({WHOLE[0][0]: (0.1, 9.0), CUT[0][0]: (0.99, 0.0), CUT[1][0]: (0.99, 0.0)})
    assert [b for b, _ in choose([WHOLE, CUT], model.crop, None)] == [WHOLE[0][0]]
    assert [b for b, _ in choose([CUT], model.crop, model.judge)] == [box for box, _ in CUT]
    assert model.asked == []
