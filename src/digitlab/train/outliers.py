"""Outlier exposure: marks that are not digits, shown to the model as "none of the classes" while it trains.

A classifier trained on digits alone has never been told what a digit is not, so a letter lands on a digit
with confidence (E -> 8, T -> 7), and no threshold on its outputs or features can tell them apart. With
outlier exposure (Hendrycks, Mazeika and Dietterich, 2019), every training batch also holds a few marks
(`digitlab.reading.marks`: letters, symbols, doodles and scribbles, drawn as a hand draws them) whose target is the
uniform distribution over the classes: the loss adds `weight` x the cross-entropy of their outputs to it.
Their outputs and features then lie apart from the digits', where the "not a digit" checks calibrated at
the end of training (`digitlab.predict.abstain`) find them. The digits' own predictions, metrics and
validation see none of it. Measured in BENCHMARKS.md ("Letters, symbols and doodles the CNN learns are
not digits"): letters declined 0.41 -> 0.56, real digits no more, about 10% more training time.
"""

from __future__ import annotations

import torch

from .augment import SeededCB

MARKS = 4000  # marks drawn once per seed in a process (about a second), warped afresh with the digits every batch
SHARE = 8  # a batch of bs digits takes bs // SHARE marks beside it: 12.5% more images (4: 25%, no better)


class OutlierExposureCB(SeededCB):
    """Each training batch: `len(xb) // SHARE` marks from `pool` appended to the inputs (before the augmentation,
    which warps them too), their predictions taken off again after the forward pass, and `weight` x their
    cross-entropy to the uniform distribution added to the loss. pool: the marks as model inputs, on the device."""

    order = -2  # before RandomAffineCB (-1): the marks are warped like the digits

    def __init__(self, pool: torch.Tensor, weight: float, seed: int = 0) -> None:
        self.pool, self.weight, self.seed = pool, weight, seed
        self.n = 0  # digits in the current training batch, the marks after them (0: no marks in this batch)

    def before_batch(self) -> None:
        self.n = 0
        if not self.learn.training:
            return
        xb, *rest = self.learn.batch
        k = len(xb) // SHARE
        if k == 0:
            return
        picked = torch.randint(len(self.pool), (k,), generator=self.generator, device=self.pool.device)
        self.n = len(xb)
        self.learn.batch = (torch.cat([xb, self.pool[picked].to(xb.dtype)]), *rest)

    def after_predict(self) -> None:
        if self.n:
            preds = self.learn.preds
            self.marks_preds, self.learn.preds = preds[self.n :], preds[: self.n]

    def after_loss(self) -> None:
        if self.n:
            uniform_ce = -self.marks_preds.float().log_softmax(1).mean(1).mean()  # CE to 1/C on every class
            self.learn.loss = self.learn.loss + self.weight * uniform_ce
