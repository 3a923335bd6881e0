"""Exercises that check themselves: the chapter's coding exercises and its questionnaire.

    from digitlab.exercises import check
    check("mnist_distance", mnist_distance)   # ✓ or ✗ with what is wrong, in words

`digitlab exercises list|show|check|quiz` is the command line; `check --all FOLDER` checks a class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .registry import Exercise, exercises, get

if TYPE_CHECKING:
    from .runner import Verdict, check


def __getattr__(name: str) -> object:
    """`check` and `Verdict` load torch with the runner, when first used: listing and showing the
    exercises (`catalogue.py`) load neither."""
    if name in ("Verdict", "check"):
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'digitlab.exercises' has no attribute {name!r}")


__all__ = ["Exercise", "Verdict", "check", "exercises", "get"]
