"""Which reading of a mark wins, whole or cut into parts: `find_digits` offers the readings, a model judges.

A reading's score is the sum over its parts of:
- log p, p the model's top probability of the part;
- shape priors: a digit is rarely over NO_JUDGE_ASPECT times wider than high (-WIDE_PENALTY per unit
  beyond), nor a part much shorter than its mark (under PIECE_HEIGHT of it: a piece of a digit,
  -PIECE_PENALTY per unit short);
- with a model that has a "not a digit" check (`digitlab.run.abstain`; its distance in units of the
  threshold): -DISTANCE_WEIGHT per unit beyond FAMILIAR. A touching "41" read whole as a 4 looks
  less like the training digits than its parts do, however sure the model is of the 4.
The highest score wins. A narrow mark (no wider than high, `find_digits`' SPLIT_ASPECT) is read whole
unless the model flags it (distance over FLAGGED): then its cuts whose parts all look familiar (under
FAMILIAR) compete as above (a touching "81" no wider than high, read whole as an 8).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .cuts import Box

Reading = list[tuple[Box, int]]  # a mark read as digits: each part's box and component label

NO_JUDGE_ASPECT = 1.5  # a digit is rarely wider than this many times its height
WIDE_PENALTY = 2.0  # a digit's log prior drops by this per unit of width/height over NO_JUDGE_ASPECT
PIECE_HEIGHT, PIECE_PENALTY = 0.75, 20.0  # a part under 0.75 of its mark's height: log prior -20/unit
# distances in units of the model's "not a digit" threshold (1: as far as the 1% farthest held-out digits)
FAMILIAR = 0.5  # up to this a part looks like a training digit: no penalty; beyond ...
DISTANCE_WEIGHT = 0.25  # ... its log score drops by this per unit (bench_numbers, development seeds 3-5)
FLAGGED = 1.25  # a narrow mark this far from the training digits may be touching digits: its cuts compete


@dataclass(frozen=True)
class Judgement:
    """What a model says about N digits, (N, 28, 28) uint8."""

    confidence: torch.Tensor  # (N,) its top probability, 0..1
    distance: torch.Tensor | None = None  # (N,) its "not a digit" distance / threshold; None: no such check


Judge = Callable[[torch.Tensor], Judgement]


def choose(
    options: list[Reading], crop: Callable[[Box, int], torch.Tensor], judge: Judge | None, narrow: bool = False
) -> list[tuple[Box, torch.Tensor]]:
    """A mark's reading (see the module's doc): each part's box and (28, 28) digit. options: its
    readings, the first to take without a judge; narrow: the mark is no wider than high (options[0]: whole)."""
    if len(options) == 1 or judge is None:
        return _cropped(options[0], crop)
    images = [_cropped(options[0], crop)]
    judged = []
    if narrow:  # the whole first: most narrow marks are single digits that look like one
        judged.append(judge(_stacked(images)))
        whole = judged[0].distance
        if whole is None or float(whole.max()) <= FLAGGED:
            return images[0]
    images += [_cropped(option, crop) for option in options[1:]]
    judged.append(judge(_stacked(images[len(judged) :])))
    sure = torch.cat([j.confidence for j in judged]).double().clamp_min(1e-9).log()  # (parts of all readings,)
    distances = [j.distance for j in judged if j.distance is not None]
    distance = torch.cat(distances).double() if len(distances) == len(judged) else None  # (parts,) or no such check
    if distance is not None:
        sure -= DISTANCE_WEIGHT * (distance - FAMILIAR).clamp_min(0)
    scores, start = [], 0
    tall = max(y1 for (_, _, y1, _), _ in options[0]) - min(y0 for (y0, _, _, _), _ in options[0])
    for i, option in enumerate(options):
        end = start + len(option)
        aspects = np.array([(x1 - x0) / max(y1 - y0, 1) for (y0, x0, y1, x1), _ in option])
        prior = -WIDE_PENALTY * np.clip(aspects - NO_JUDGE_ASPECT, 0, None).sum()  # log: a digit is rarely so wide
        heights = np.array([y1 - y0 for (y0, _, y1, _), _ in option]) / tall  # of the mark's height
        prior -= PIECE_PENALTY * np.clip(PIECE_HEIGHT - heights, 0, None).sum()  # log: a piece, not a digit
        strange = narrow and i > 0 and distance is not None and bool((distance[start:end] >= FAMILIAR).any())
        scores.append(-np.inf if strange else float(sure[start:end].sum()) + prior)  # strange: a narrow mark's odd cut
        start = end
    return images[int(np.argmax(scores))]


def _cropped(reading: Reading, crop: Callable[[Box, int], torch.Tensor]) -> list[tuple[Box, torch.Tensor]]:
    return [(box, crop(box, label)) for box, label in reading]


def _stacked(readings: list[list[tuple[Box, torch.Tensor]]]) -> torch.Tensor:
    """(parts, 28, 28) uint8: the readings' digits, in order."""
    return torch.stack([digit for reading in readings for _, digit in reading])
