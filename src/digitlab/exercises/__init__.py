"""Exercises that check themselves: the chapter's coding exercises and its questionnaire.

    from digitlab.exercises import check
    check("mnist_distance", mnist_distance)   # ✓ or ✗ with what is wrong, in words

`digitlab exercises list|show|check|quiz` is the command line; `check --all FOLDER` checks a class.
"""

from __future__ import annotations

from .registry import Exercise, exercises, get
from .runner import Verdict, check

__all__ = ["Exercise", "Verdict", "check", "exercises", "get"]
