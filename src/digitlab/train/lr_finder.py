"""Leslie Smith's learning-rate finder, as fastai's `lr_find`: try rising rates, one batch each,
on the learner itself (miniai's way), stop when the loss blows up, then put the learner back."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .callback import Callback, CancelEpochException, CancelFitException

if TYPE_CHECKING:
    from .learner import Learner


@dataclass
class LRFind:
    lrs: list[float]
    losses: list[float]  # exponentially smoothed training loss at each lr
    suggestion: float  # the lr where the smoothed loss fell fastest (steepest slope), a safe pick


class LRFinderCB(Callback):
    """Multiply the lr by a constant each training batch; skip validation; stop on divergence."""

    order = -5  # where a schedule sits: it owns the learning rate

    def __init__(self, start: float, end: float, num: int, beta: float = 0.9) -> None:
        self.start, self.end, self.num, self.beta = start, end, num, beta

    def before_fit(self) -> None:
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.smoothed, self.best = 0.0, math.inf

    def before_epoch(self) -> None:
        if not self.learn.training:
            raise CancelEpochException()  # no validation: every batch is a step of the search

    def before_batch(self) -> None:
        lr = self.start * (self.end / self.start) ** (len(self.lrs) / max(self.num - 1, 1))
        for group in self.learn.opt.param_groups:
            group["lr"] = lr
        self.lrs.append(lr)

    def after_loss(self) -> None:
        loss = self.learn.loss.detach().item()
        step = len(self.losses) + 1
        self.smoothed = self.beta * self.smoothed + (1 - self.beta) * loss
        smoothed = self.smoothed / (1 - self.beta**step)  # bias correction for the first steps
        self.losses.append(smoothed)
        self.best = min(self.best, smoothed)
        if not math.isfinite(loss) or smoothed > 4 * self.best or len(self.losses) >= self.num:
            raise CancelFitException()


def lr_find(learn: Learner, start: float = 1e-7, end: float = 10.0, num: int = 100) -> LRFind:
    """Fit `learn` with an `LRFinderCB` added, inside `search(learn)`: a trial, then undone.

    The learner's own callbacks that shape the computation (device, precision, layout,
    augmentation, distribution) run as in training, so the rates are found for the fit that
    follows; those that record, show, schedule, guard or save a fit stand aside (`in_search`),
    so the finder, not the divergence guard, ends the search when the loss explodes.
    Afterwards the learner is as it was: same weights, optimizer, lr and recorder.
    """
    finder = LRFinderCB(start, end, num)
    with search(learn):
        learn.fit(math.ceil(num / max(len(learn.dls.train), 1)), lr=start, cbs=[finder])
    lrs, losses = finder.lrs[: len(finder.losses)], finder.losses
    return LRFind(lrs, losses, _steepest(lrs, losses))


def _steepest(lrs: list[float], losses: list[float]) -> float:
    """The lr at the most negative slope of loss against log(lr), ignoring the blown-up tail."""
    if len(losses) < 3:
        return lrs[0] if lrs else float("nan")
    end = min(range(len(losses)), key=losses.__getitem__) + 1  # up to the minimum
    log_lrs = torch.tensor(lrs[:end]).log()
    values = torch.tensor(losses[:end])
    if len(values) < 3:
        return lrs[max(end - 1, 0)] / 10
    slopes = (values[1:] - values[:-1]) / (log_lrs[1:] - log_lrs[:-1])
    return float(lrs[int(slopes.argmin())])


@contextmanager
def search(learn: Learner) -> Iterator[None]:
    """A trial run, undone on exit: what `lr_find` fits in (miniai's save, fit, restore).

    Inside, callbacks whose `in_search` is False (those that record, show, guard, schedule
    or save a fit) stand aside; the others (device, precision, layout, augmentation,
    distribution) run as in any fit. On exit, even after an error, the model's weights and
    buffers and the optimizer's state are restored from copies, and the learner's
    attributes (model, optimizer, lr, callbacks, loop state) are put back as they were.
    The training loader's shuffling moves on (its generator is the loader's), as after any fit.
    """
    saved = dict(vars(learn))
    weights = copy.deepcopy(learn.model.state_dict())
    opt_state = copy.deepcopy(learn.opt.state_dict()) if learn.opt is not None else None
    training = learn.model.training
    learn.cbs = [cb for cb in learn.cbs if cb.in_search]
    try:
        yield
    finally:
        vars(learn).clear()
        vars(learn).update(saved)
        learn.model.load_state_dict(weights)
        if opt_state is not None:
            learn.opt.load_state_dict(opt_state)
        learn.model.train(training)
