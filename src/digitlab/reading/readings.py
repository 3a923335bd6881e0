"""Which reading of a mark wins, whole or cut into parts: `find_digits` offers the readings, a model judges.

A reading's score is the sum over its parts of:
- log p, p the model's top probability of the part;
- shape priors: a digit is rarely over NO_JUDGE_ASPECT times wider than high (-WIDE_PENALTY per unit
  beyond), nor a part much shorter than its mark (under PIECE_HEIGHT of it: a piece of a digit,
  -PIECE_PENALTY per unit short);
- with a model that has a "not a digit" check (`digitlab.predict.abstain`: the Mahalanobis distance of
  its features, in units of the check's threshold): -DISTANCE_WEIGHT per unit beyond FAMILIAR. A
  touching "41" read whole as a 4 lies farther from the training digits than its parts do, however
  sure the model is of the 4. A model saved without that check: the probabilities and priors alone.
The highest score wins.
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
# distances in units of the "not a digit" threshold (1: as far as the 1% farthest held-out digits)
FAMILIAR = 0.5  # up to this a part looks like a training digit: no penalty; beyond ...
DISTANCE_WEIGHT = 0.25  # ... its log score drops by this per unit (bench_numbers, development seeds 3-5)


@dataclass(frozen=True)
class Judgement:
    """What a model says about N digits, (N, 28, 28) uint8."""

    confidence: torch.Tensor  # (N,) its top probability, 0..1
    distance: torch.Tensor | None = None  # (N,) its "not a digit" distance / threshold; None: no such check


Judge = Callable[[torch.Tensor], Judgement]


def choose(
    options: list[Reading], crop: Callable[[Box, int], torch.Tensor], judge: Judge | None
) -> list[tuple[Box, torch.Tensor]]:
    """A mark's reading (see the module's doc): each part's box and (28, 28) digit. options: its
    readings, the first to take without a judge."""
    images = [[(box, crop(box, label)) for box, label in option] for option in options]
    if len(options) == 1 or judge is None:
        return images[0]
    judged = judge(torch.stack([digit for reading in images for _, digit in reading]))  # all parts of all readings
    sure = judged.confidence.double().clamp_min(1e-9).log()  # (parts,)
    if judged.distance is not None:
        sure -= DISTANCE_WEIGHT * (judged.distance.double() - FAMILIAR).clamp_min(0)
    scores, start = [], 0
    tall = max(y1 for (_, _, y1, _), _ in options[0]) - min(y0 for (y0, _, _, _), _ in options[0])
    for option in options:
        aspects = np.array([(x1 - x0) / max(y1 - y0, 1) for (y0, x0, y1, x1), _ in option])
        prior = -WIDE_PENALTY * np.clip(aspects - NO_JUDGE_ASPECT, 0, None).sum()  # log: a digit is rarely so wide
        heights = np.array([y1 - y0 for (y0, _, y1, _), _ in option]) / tall  # of the mark's height
        prior -= PIECE_PENALTY * np.clip(PIECE_HEIGHT - heights, 0, None).sum()  # log: a piece, not a digit
        scores.append(float(sure[start : start + len(option)].sum()) + prior)
        start += len(option)
    return images[int(np.argmax(scores))]
