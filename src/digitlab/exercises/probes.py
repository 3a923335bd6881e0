"""Probes: a pass is believed only when the learner's code computes the book's results on fresh inputs.

A check runs in the child, beside the learner's code, so the learner's code could rewrite it. A
probe splits the work: `observe(obj, seed)` runs in the child after a pass and returns what the
learner's object computes on inputs drawn from `seed` (numbers and lists only: JSON); `disagrees`
runs in the checker's own process, draws the same inputs, computes the book's answer with digitlab's
code and says what is wrong, or None. The seed is new for every check, so no stored answer fits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

Observe = Callable[[Any, int], Any]
Disagrees = Callable[[Any, int], "str | None"]


@dataclass(frozen=True)
class Probe:
    observe: Observe  # in the child: (the learner's object, seed) -> JSON-able numbers and lists
    judge: Disagrees  # here: (the observation, seed) -> what is wrong, or None when it is the book's

    def disagrees(self, observation: Any, seed: int) -> str | None:
        """What is wrong with the observation; anything unreadable (a forged or broken report) is wrong."""
        if isinstance(observation, dict) and isinstance(observation.get("error"), str):
            return f"failed: {observation['error'][:500]}"
        try:
            return self.judge(observation, seed)
        except Exception:
            return "sent results that could not be read as its answer"


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def numbers(value: Any) -> Any:
    """A tensor (or number) as JSON: nested lists of floats (bools and ints stay)."""
    return torch.as_tensor(value).detach().cpu().tolist()


def tensor(observation: Any) -> torch.Tensor:
    """JSON numbers back into a float64 tensor; ValueError for anything else."""
    if not isinstance(observation, (list, int, float)):
        raise ValueError("not numbers")
    return torch.tensor(observation, dtype=torch.float64)


def differs(observation: Any, want: torch.Tensor, atol: float = 1e-4) -> str | None:
    """None when the observed numbers have want's shape and values (to a tolerance); else what differs."""
    got, want = tensor(observation), want.double()
    if tuple(got.shape) != tuple(want.shape):
        return f"gave shape {tuple(got.shape)} where the book's gives {tuple(want.shape)}"
    if not bool(torch.isfinite(got).all()) and bool(torch.isfinite(want).all()):
        return "gave nan or infinite values"
    if got.numel() and not torch.allclose(got, want, atol=atol, rtol=1e-3):
        worst = float((got - want).abs().max())
        return f"differs from the book's results by up to {worst:.3g}" if math.isfinite(worst) else "differs"
    return None
