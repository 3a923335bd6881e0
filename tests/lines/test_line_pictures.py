"""A picture's lines as a line reader sees them, and a line cut where the reader sees its digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from digitlab.data.lines import COLUMN
from digitlab.line_reader import LineReading
from digitlab.predict.lines import parts_at
from digitlab.reading.lines import MARGIN, line_picture
from digitlab.reading.segment import find_page


def test_a_line_picture_is_32_high_its_width_whole_columns():
    ink = np.zeros((100, 330), np.float32)
    ink[10:90, 20:60] = 255
    ink[10:90, 200:240] = 255
    line = line_picture(ink, (50, 70), scale=2.0)
    assert line.picture.shape[0] == 32 and line.picture.shape[1] % COLUMN == 0 and line.picture.shape[1] >= 192
    assert line.box == (140, 100, 800, 300)  # the ink's box, in the input's pixels
    rows = np.nonzero(line.picture.max(axis=1))[0]
    assert rows.min() >= 2 and rows.max() <= 29  # the line spans 28 px, centred
    cols = np.nonzero(line.picture.max(axis=0))[0]
    assert abs(cols.min() - (MARGIN + 20 * 28 / 100)) <= 1  # the ink starts 20 working px in, scaled 28 / 100


def test_a_page_of_two_lines_gives_two_line_pictures(number_picture, clear_digits):
    photo, boxes = number_picture(["31", "47"], clear_digits)
    page = find_page(photo, lines=True)
    assert len(page.lines) == 2 and [d.line for d in page.digits] == [0, 0, 1, 1]
    for number, line in enumerate(page.lines):
        own = [b for b, d in zip(boxes, page.digits) if d.line == number]
        x0, y0, x1, y1 = line.box
        assert all(x0 - 8 <= b[0] and b[2] <= x1 + 8 and y0 - 8 <= b[1] and b[3] <= y1 + 8 for b in own)


def test_a_touching_pair_is_cut_where_the_reader_sees_two_digits(number_picture, clear_digits):
    photo, boxes = number_picture(["38"], clear_digits, gap=-0.05)
    line = find_page(photo, lines=True).lines[0]
    ink = np.nonzero(line.picture.max(axis=0))[0]
    middle = (ink[0] + ink[-1]) / 2 / COLUMN
    # the reader's two digits: a column a quarter and three quarters of the way along the ink
    first, second = round((ink[0] / COLUMN + middle) / 2), round((middle + ink[-1] / COLUMN) / 2)
    parts = parts_at(line, LineReading("38", (0.9, 0.9), ((first, first), (second, second))), 0)
    assert len(parts) == 2 and all(p.image.shape == (28, 28) and p.image.dtype == torch.uint8 for p in parts)
    assert parts[0].box[2] == parts[1].box[0]  # cut at one column
    cut = parts[0].box[2]
    assert boxes[0][0] - 10 <= parts[0].box[0] and parts[1].box[2] <= boxes[1][2] + 10
    assert boxes[0][0] < cut < boxes[1][2]


@pytest.mark.parametrize("columns", [(), ((0, 0), (1, 1))])
def test_places_that_do_not_fit_the_line_cut_nothing(columns, number_picture, clear_digits):
    photo, _ = number_picture(["38"], clear_digits)
    line = find_page(photo, lines=True).lines[0]
    assert parts_at(line, LineReading("38"[: len(columns)], (0.9,) * len(columns), columns), 0) == []
