"""`ThreadPolicyCB`: torch's CPU threads chosen from the free cores at the start of a fit, and again
between epochs, so a machine that gets busy mid-run does not stall every step (`digitlab.core.threads`)."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from ..core.threads import RESAMPLE_SECONDS, ThreadChoice, choose_threads
from .callback import Callback

# A sample every RESAMPLE_SECONDS, unless an epoch took SLOWER times the fastest one: then at once (load came)
SLOWER = 1.3
SLOWED_MIN_SECONDS = 0.5  # ... and took this long: a sample is then at most 10% of it (the book's linear
# epochs take ~2 ms and jitter by more than 1.3x: sampling after each made a 0.3 s fit take 5 s)


class ThreadPolicyCB(Callback):
    """Set torch's thread count to the free cores before the fit and between epochs: every
    RESAMPLE_SECONDS, and at once after an epoch SLOWER than the fastest at the same thread count.

    choices: each (epoch, ThreadChoice) that changed the count, the first included.
    """

    order = -20  # before anything of the epoch runs
    name = "thread_policy"  # learn.thread_policy

    def __init__(self, choose: Callable[[], ThreadChoice] | None = None) -> None:
        self.choose = choose_threads if choose is None else choose
        self.choices: list[tuple[int, ThreadChoice]] = []
        self.last_sample = -float("inf")
        self.epoch_start: float | None = None
        self.fastest: dict[int, float] = {}  # threads -> the fastest epoch's seconds with them

    def _slowed(self) -> bool:
        """The epoch that just ended took SLOWER times the fastest with these threads (its validation
        included: both run with the same threads)."""
        if self.epoch_start is None:
            return False
        seconds, threads = time.monotonic() - self.epoch_start, torch.get_num_threads()
        fastest = self.fastest.setdefault(threads, seconds)
        self.fastest[threads] = min(fastest, seconds)
        return seconds > SLOWER * fastest and seconds >= SLOWED_MIN_SECONDS

    def _apply(self, epoch: int, slowed: bool = False) -> None:
        if not slowed and time.monotonic() - self.last_sample < RESAMPLE_SECONDS:
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
            self._apply(self.learn.epoch, self._slowed())
            self.epoch_start = time.monotonic()

    @property
    def why(self) -> str:
        """The choices in words: "2 (2 usable cores, 0.0 busy with other work); from epoch 3: 1 (...)"."""
        return "; ".join(
            f"{'' if epoch == 0 else f'from epoch {epoch + 1}: '}{c.threads} ({c.why})" for epoch, c in self.choices
        )
