"""A picture of several digits ("2026", a meter reading, two lines of a phone number) -> each digit,
boxed and preprocessed the MNIST way: `find_digits`, the sibling of `to_mnist`.

The same background and polarity estimation as `to_mnist` (`ink_map`), at a finer working
resolution (NUMBER_SIDE: digits of a long number still get tens of pixels); then:
- connected components of the ink (8-connected, by runs);
- pieces of a broken stroke merged: boxes stacked one above the other (overlapping horizontally by
  half the narrower one, a gap of at most a quarter of the taller one), and a short mark close
  beside the top of a digit-sized one (a 5's detached flag);
- marks much shorter than the digits dropped (dots, commas, hyphens: under 0.4 of the median height);
- lines: components whose vertical centres fall inside a line's span join it; lines top to bottom;
- pieces of a broken digit side by side (a 6 whose stem does not reach its loop, a 4 in two strokes),
  with a model to judge: two neighbours close together (PIECE_GAP) that would make one digit-shaped box
  (PIECE_ASPECT) are read both ways, as two digits and as one, and the likelier wins (`readings.choose`);
- touching digits split: a component wider than SPLIT_ASPECT times its height may be cut into
  parts at the columns of least ink near the even cuts; with a model to judge (`judge`), also in 2
  at up to cuts.CUT_TRIES columns of locally least ink (a 1 beside a digit: off the middle), and
  the likeliest reading (whole, 2, 3, ... parts) wins (`readings.choose`: the product of the parts'
  probabilities, shape priors, how much the parts look like training digits); without one, a
  component wider than NO_JUDGE_ASPECT is cut into round(width / a typical digit width) parts;
- each digit's own ink (not its neighbours' intruding into its box) fitted and centred as MNIST's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..errors import DataError
from .components import graph_components, runs
from .cuts import Box, cut, parts, valleys
from .lines import LinePicture, line_picture
from .preprocessing import centred_digit, ink_map, working_gray
from .readings import NO_JUDGE_ASPECT, Judge, choose

NUMBER_SIDE = 1024  # working resolution's longest side for numbers (to_mnist's one digit: 512)
MAX_DIGITS = 64  # more is not a number to read (a page of text, a texture): refused
MIN_SIDE = 8  # an image thinner than this (a 1x10000 strip) cannot hold a digit
MIN_INK = 0.015  # a digit spans at least this fraction of the picture's longest side (to_mnist's: 0.04)
STACK_OVERLAP, STACK_GAP = 0.5, 0.25  # merging the pieces of a broken digit (fractions, see above)
SHORT = 0.4  # marks shorter than this fraction of the median height are not digits ...
FLAG_GAP, FLAG_TOP = 0.3, 0.35  # ... unless beside a digit's top (within these fractions of its height)
SPLIT_ASPECT = 1.0  # a component this many times wider than high may hold touching digits
# (readings.NO_JUDGE_ASPECT: and is cut over that, when there is no model to judge the cut)
DIGIT_ASPECT = 0.8  # a digit's typical width / height, when the line has no other digits to go by
PIECE_GAP = 0.12  # neighbours at most this far apart (of the taller one's height; < 0: overlapping) ...
PIECE_ASPECT = 0.9  # ... whose joint box is at most this many times wider than high may be one digit


@dataclass(frozen=True)
class FoundDigit:
    """One digit of a picture: where it is and what the model will see."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the input's pixels (after EXIF turning), x1, y1 exclusive
    line: int  # 0 = the top line
    image: torch.Tensor  # (28, 28) uint8, MNIST style


@dataclass(frozen=True)
class FoundPage:
    """A picture's digits and, when asked for (`find_page(..., lines=True)`), its lines as a line reader sees
    them (`lines[i]` holds the digits of line i; empty otherwise)."""

    digits: list[FoundDigit]
    lines: list[LinePicture]


def find_digits(
    image: Image.Image,
    *,
    source: str = "image",
    max_digits: int = MAX_DIGITS,
    judge: Judge | None = None,
    cut_lone: bool = True,
) -> list[FoundDigit]:
    """Every digit in a picture: `find_page`'s digits."""
    return find_page(image, source=source, max_digits=max_digits, judge=judge, cut_lone=cut_lone).digits


def find_page(
    image: Image.Image,
    *,
    source: str = "image",
    max_digits: int = MAX_DIGITS,
    judge: Judge | None = None,
    cut_lone: bool = True,
    lines: bool = False,
) -> FoundPage:
    """Every digit in a picture, lines top to bottom and left to right in each; DataError (naming
    `source`) when there is none, more than `max_digits`, or the image is too thin to hold one.

    judge: (N, 28, 28) uint8 digits -> how sure a model is of each (its top probability) and, when it
    can tell, how far each lies from its training digits (`readings.Judgement`); with it, a component
    is read whole or cut as `readings.choose` says; without it, it is cut only when wider than
    NO_JUDGE_ASPECT times its height.
    cut_lone: False: a picture of one mark is one digit, however wide (a digit drawn wide, a bar).
    lines: also each line's picture as a line reader sees it (`FoundPage.lines`; made only when asked).
    """
    width, height = image.size
    if min(width, height) < MIN_SIDE:
        raise DataError(f"{source}: a {width}x{height} image is too thin to hold a digit")
    gray = working_gray(image, source, NUMBER_SIDE)  # (h, w) float32, upright
    scale = max(width, height) / max(gray.shape)  # input pixels per working pixel (EXIF turning swaps w, h)
    ink = ink_map(gray, source, MIN_INK)  # (h, w) float32, 0 = background
    found = runs(ink > 0)
    labels = found.image()
    if found.count > 20 * max_digits:  # before the quadratic steps below: a texture, not a number
        raise DataError(f"{source}: {found.count:,} separate marks found, not a number (limit {max_digits} digits)")
    boxes = _merged(found.boxes(), labels)
    heights = boxes[:, 2] - boxes[:, 0]
    boxes = boxes[heights >= SHORT * np.median(heights)]
    grouped = _lines(boxes)
    if cut_lone or len(boxes) > 1:
        options = [_options(line, labels, judge is not None) for line in grouped]
    else:
        options = [[[[_whole(boxes[0])]]]]  # one line, one mark, read one way: whole
    if sum(len(line) for line in options) > max_digits:
        raise DataError(
            f"{source}: {sum(map(len, options))} digits found (limit {max_digits}): crop the picture to the number"
        )

    joint: dict[int, tuple[int, int]] = {}  # a label < 0: two neighbours read as one digit (_with_pieces)
    if judge is not None:
        options = [_with_pieces(line, marks, joint) for line, marks in zip(grouped, options)]

    def crop(box: Box, label: int) -> torch.Tensor:
        y0, x0, y1, x1 = box
        own = np.isin(labels[y0:y1, x0:x1], joint.get(label, label))  # its own ink, not a neighbour's reaching in
        return torch.from_numpy(centred_digit(np.where(own, ink[y0:y1, x0:x1], 0.0)))

    digits = []
    for number, line in enumerate(options):
        for marks in line:
            for (y0, x0, y1, x1), digit in choose(marks, crop, judge):
                in_input = (x0 * scale, y0 * scale, x1 * scale, y1 * scale)
                x_0, y_0, x_1, y_1 = (
                    int(min(max(round(v), 0), side)) for v, side in zip(in_input, (width, height) * 2)
                )
                digits.append(FoundDigit((x_0, y_0, x_1, y_1), number, digit))
    if len(digits) > max_digits:
        raise DataError(f"{source}: {len(digits)} digits found (limit {max_digits}): crop the picture to the number")
    pictures = [_line_picture(line, labels, ink, scale) for line in grouped] if lines else []
    return FoundPage(digits, pictures)


def _line_picture(line: np.ndarray, labels: np.ndarray, ink: np.ndarray, scale: float) -> LinePicture:
    """A line's rows (y0, x0, y1, x1, label) -> its picture, with its own marks' ink only."""
    y0, x0, y1, x1 = int(line[:, 0].min()), int(line[:, 1].min()), int(line[:, 2].max()), int(line[:, 3].max())
    own = np.isin(labels[y0:y1, x0:x1], line[:, 4])
    return line_picture(np.where(own, ink[y0:y1, x0:x1], 0.0).astype(np.float32), (y0, x0), scale)


def _merged(boxes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(n, 5) int64 boxes of the merged components: y0, x0, y1, x1, and the merged group's smallest
    label; the labels image is relabelled so that every pixel of a group carries that label."""
    n = len(boxes)
    y0, x0, y1, x1 = boxes.T
    width, height = x1 - x0, y1 - y0
    overlap_x = np.minimum(x1[:, None], x1[None]) - np.maximum(x0[:, None], x0[None])  # (n, n)
    gap_y = np.maximum(y0[:, None], y0[None]) - np.minimum(y1[:, None], y1[None])  # < 0: they overlap
    stacked = (overlap_x >= STACK_OVERLAP * np.minimum(width[:, None], width[None])) & (
        (gap_y <= STACK_GAP * np.maximum(height[:, None], height[None]))
        & (-gap_y <= STACK_OVERLAP * np.minimum(height[:, None], height[None]))  # not side by side
    )
    # a short mark beside the top of a digit-sized one, close to it, is its detached part (a 5's flag)
    short = height < SHORT * np.median(height)
    gap_x = np.maximum(x0[:, None], x0[None]) - np.minimum(x1[:, None], x1[None])  # < 0: they overlap
    centre = (y0 + y1) / 2
    flag = (
        short[:, None]
        & ~short[None]
        & (gap_x <= FLAG_GAP * height[None])
        & (centre[:, None] >= y0[None] - 0.1 * height[None])
        & (centre[:, None] <= y0[None] + FLAG_TOP * height[None])
    )
    joined = np.triu(stacked | flag | flag.T, 1)
    group = graph_components(n, *np.nonzero(joined))  # (n,) each box's group: its smallest member
    roots = np.unique(group)
    merged = np.empty((len(roots), 5), np.int64)
    for i, root in enumerate(roots):  # a loop over digits, not pixels
        members = group == root
        merged[i] = (y0[members].min(), x0[members].min(), y1[members].max(), x1[members].max(), root + 1)
    relabel = np.concatenate([[0], group + 1])
    labels[...] = relabel[labels]
    return merged


def _lines(boxes: np.ndarray) -> list[np.ndarray]:
    """The boxes grouped into lines (a box joins a line when its vertical centre lies within the
    line's span), top to bottom, each sorted left to right."""
    lines: list[list[np.ndarray]] = []
    spans: list[list[float]] = []
    for box in boxes[np.argsort(boxes[:, 0] + boxes[:, 2])]:
        centre = (box[0] + box[2]) / 2
        for members, span in zip(lines, spans):
            if span[0] <= centre <= span[1]:
                members.append(box)
                span[0], span[1] = min(span[0], box[0]), max(span[1], box[2])
                break
        else:
            lines.append([box])
            spans.append([float(box[0]), float(box[2])])
    stacked = [np.stack(members) for members in lines]
    return [line[np.argsort(line[:, 1], kind="stable")] for line in stacked]


def _options(line: np.ndarray, labels: np.ndarray, judged: bool) -> list[list[list[tuple[Box, int]]]]:
    """A line's components -> for each, its readings (a reading: a list of (box y0, x0, y1, x1, label)):
    a component up to SPLIT_ASPECT times wider than high is one digit; wider, it may be whole (when a
    model judges, or up to NO_JUDGE_ASPECT) or cut into 2 .. (as many digits as its width holds, by the
    line's other digits' median width or DIGIT_ASPECT, at least 2) parts, at the columns of least ink
    (judged: also in 2 at each of `cuts.valleys`). The first reading is the one to take without a
    model: whole up to NO_JUDGE_ASPECT, else cut into as many parts as its width holds."""
    widths, heights = line[:, 3] - line[:, 1], line[:, 2] - line[:, 0]
    single = widths <= SPLIT_ASPECT * heights
    typical = float(np.median(widths[single])) if single.any() else DIGIT_ASPECT * float(np.median(heights))
    out = []
    for row, w, h in zip(line, widths.tolist(), heights.tolist()):
        whole = [_whole(row)]
        (y0, x0, y1, x1), label = whole[0]
        if w <= SPLIT_ASPECT * h:
            out.append([whole])
            continue
        whole_is_likely = w <= NO_JUDGE_ASPECT * h
        fewest = 1 if judged or whole_is_likely else 2
        likely = max(fewest, round(w / max(typical, 1.0)))
        own = labels[y0:y1, x0:x1] == label  # (h, w): this component's pixels in its box
        first = 1 if whole_is_likely else likely
        counts = [first] + [n for n in range(fewest, max(likely, fewest + 1) + 1) if n != first]
        options = [whole if n == 1 else cut(own, y0, x0, label, n) for n in counts]  # first: without a judge
        if judged:  # more places to cut in 2: the model judges each
            options += [parts(own, y0, x0, label, [0, c, w]) for c in valleys(own.sum(axis=0))]
        out.append([option for option in options if option] or [whole])
    return out


def _with_pieces(
    line: np.ndarray, marks: list[list[list[tuple[Box, int]]]], joint: dict[int, tuple[int, int]]
) -> list[list[list[tuple[Box, int]]]]:
    """A line's marks (each its readings, `_options`) with neighbours that may be the pieces of one digit taken
    together: one mark whose readings are each of theirs side by side, then both as one digit, whose label
    (< 0) `joint` maps to both of theirs. A mark joins at most one neighbour, left to right."""
    out: list[list[list[tuple[Box, int]]]] = []
    i = 0
    while i < len(marks):
        if i + 1 < len(marks) and _pieces(line[i], line[i + 1]):
            ((ay0, ax0, ay1, ax1), a_label), ((by0, bx0, by1, bx1), b_label) = _whole(line[i]), _whole(line[i + 1])
            label = -1 - len(joint)
            joint[label] = (a_label, b_label)
            one = ((min(ay0, by0), min(ax0, bx0), max(ay1, by1), max(ax1, bx1)), label)
            out.append([a + b for a in marks[i] for b in marks[i + 1]] + [[one]])
            i += 2
        else:
            out.append(marks[i])
            i += 1
    return out


def _pieces(a: np.ndarray, b: np.ndarray) -> bool:
    """Two neighbours' rows (y0, x0, y1, x1, label), a left of b: close enough, and together shaped like
    one digit, to be the pieces of one."""
    tall = max(a[2], b[2]) - min(a[0], b[0])
    wide = max(a[3], b[3]) - min(a[1], b[1])
    gap = b[1] - a[3]
    return bool(gap <= PIECE_GAP * max(a[2] - a[0], b[2] - b[0]) and wide <= PIECE_ASPECT * tall)


def _whole(box: np.ndarray) -> tuple[Box, int]:
    """A merged component's row (y0, x0, y1, x1, label) as one digit's (box, label)."""
    y0, x0, y1, x1, label = (int(v) for v in box)
    return (y0, x0, y1, x1), label
