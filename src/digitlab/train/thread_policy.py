"""`ThreadPolicyCB`: torch's CPU threads chosen from the free cores at the start of a fit, and again
between epochs, so a machine that gets busy mid-run does not stall every step (`digitlab.threads`)."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from ..threads import ThreadChoice, choose_threads
from .learner import Callback

RESAMPLE_SECONDS = 2.0  # a sample costs ~0.05 s: taken at most every 2 s, it costs at most ~2.5%


class ThreadPolicyCB(Callback):
    """Set torch's thread count to the free cores before the fit and between epochs.

    choices: each (epoch, ThreadChoice) that changed the count, the first included.
    """

    order = -20  # before anything of the epoch runs
    name = "thread_policy"  # learn.thread_policy

    def __init__(self, choose: Callable[[], ThreadChoice] | None = None) -> None:
        self.choose = choose_threads if choose is None else choose
        self.choices: list[tuple[int, ThreadChoice]] = []
        self.last_sample = -float("inf")

    def _apply(self, epoch: int) -> None:
        now = time.monotonic()
        if now - self.last_sample < RESAMPLE_SECONDS:
            return
        choice = self.choose()
        self.last_sample = time.monotonic()
        if not self.choices or choice.threads != torch.get_num_threads():
            torch.set_num_threads(choice.threads)
            self.choices.append((epoch, choice))

    def before_fit(self) -> None:
        self._apply(0)

    def before_epoch(self) -> None:
        if self.learn.training:  # before_epoch runs for the validation pass too
            self._apply(self.learn.epoch)

    @property
    def why(self) -> str:
        """The choices in words: "2 (2 usable cores, 0.0 busy with other work); from epoch 3: 1 (...)"."""
        return "; ".join(
            f"{'' if epoch == 0 else f'from epoch {epoch + 1}: '}{c.threads} ({c.why})" for epoch, c in self.choices
        )
