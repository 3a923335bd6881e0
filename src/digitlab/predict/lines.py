"""A saved line reader at work: each line of a picture read whole (`LineChecker.read`), and a line cut where
the reader says its digits are (`parts_at`), so that the digit model can read those parts too."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..artifacts.line_files import load_line_reader
from ..data.lines import COLUMN
from ..line_reader import LineReader, LineReading, decode
from ..reading.lines import LinePicture
from ..reading.preprocessing import centred_digit
from ..reading.segment import FoundDigit

BATCH_WIDTH = 64 * 1024  # lines x width px read at once (a page of long lines: a few batches)


@dataclass
class LineChecker:
    """A line reader and its card."""

    model: LineReader
    card: dict[str, Any]

    @classmethod
    def load(cls, folder: Path | str) -> LineChecker:
        return cls(*load_line_reader(Path(folder)))

    def read(self, lines: Sequence[LinePicture]) -> list[LineReading]:
        """Each line's reading; lines of different widths are padded with background on the right."""
        readings: list[LineReading] = []
        start = 0
        while start < len(lines):
            width = max(line.picture.shape[1] for line in lines[start:])
            count = max(1, BATCH_WIDTH // width)
            batch = lines[start : start + count]
            x = torch.zeros(len(batch), 1, batch[0].picture.shape[0], width)
            for i, line in enumerate(batch):
                x[i, 0, :, : line.picture.shape[1]] = torch.from_numpy(line.picture) / 255  # (32, W) uint8
            with torch.no_grad():
                readings += decode(self.model(x))
            start += count
        return readings

    def __repr__(self) -> str:
        scores = self.card.get("scores", {})
        return f"LineChecker({self.model!r}, validation lines read exactly: {scores})"


def parts_at(line: LinePicture, reading: LineReading, number: int) -> list[FoundDigit]:
    """The line cut between the digits the reader sees (half-way between one digit's columns and the next's),
    each part's ink as an MNIST digit; boxes in the input's pixels, `line` = number."""
    picture = line.picture.astype(np.float32)
    ink_columns = np.nonzero(picture.max(axis=0) > 0)[0]
    if len(ink_columns) == 0 or not reading.columns:
        return []
    centres = [(first + last + 1) / 2 * COLUMN for first, last in reading.columns]  # px of the line picture
    edges = [int(ink_columns[0])] + [round((a + b) / 2) for a, b in pairwise(centres)]
    edges.append(int(ink_columns[-1]) + 1)
    parts = []
    for x0, x1 in pairwise(edges):
        if x1 <= x0 or not picture[:, x0:x1].any():
            return []  # a part with no ink: the reader's places do not fit this line
        box = (line.input_x(x0), line.box[1], line.input_x(x1), line.box[3])
        parts.append(FoundDigit(box, number, torch.from_numpy(centred_digit(picture[:, x0:x1]))))
    return parts
