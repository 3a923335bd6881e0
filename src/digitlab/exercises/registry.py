"""The catalogue: every exercise's name, task, starter code, check and time limit.

An exercise asks for one name (a function or class) written as the book's cell writes it. Its
`check(obj, ctx)` runs the learner's object on many cases against digitlab's own reference and
returns a one-line "why it is right", or raises `Wrong` with what is wrong.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DigitlabError
from .probes import Probe


@dataclass
class CheckContext:
    """What a check may use besides the learner's object."""

    files: tuple[str, ...] = ()  # the learner's cell filenames (to quote their lines in feedback)
    data: Path | None = None  # the full-MNIST exercise's data file (written by the parent process)
    payload: dict[str, Any] = field(default_factory=dict)  # what a check hands back (predictions)
    judge: Callable[[list[int], float], str] | None = None  # scores predictions where the labels are


Check = Callable[[Any, CheckContext], str]


@dataclass(frozen=True)
class Exercise:
    name: str  # the name the learner defines, e.g. "mnist_distance"
    title: str
    task: str  # what to write, in the book's words and ours
    starter: str  # a skeleton to start from
    check: Check
    seconds: float | None = None  # its own time limit when it needs more than the checker's default
    questions: tuple[int, ...] = ()  # questionnaire items about the same idea
    probe: Probe | None = None  # confirms a pass outside the learner's process (None: judged otherwise)


_EXERCISES: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    _EXERCISES[exercise.name] = exercise
    return exercise


# The modules that register exercises, and the order in which the chapter meets them.
MODULES = ("checks_tensors", "checks_baseline", "checks_sgd", "checks_training", "checks_networks", "full_mnist")
ORDER = [
    "stack_images",
    "rank_and_shape",
    "double_odds",
    "double_and_select",
    "l1_and_rmse",
    "mnist_distance",
    "is_3",
    "init_params",
    "linear1",
    "mnist_loss",
    "batch_accuracy",
    "batches",
    "zip_pairs",
    "train_epoch",
    "validate_epoch",
    "BasicOptim",
    "simple_net",
    "train_mnist",
]


def exercises() -> dict[str, Exercise]:
    """All exercises in the chapter's order (importing the modules that define them)."""
    import importlib

    for module in MODULES:
        importlib.import_module(f"{__package__}.{module}")
    return {name: _EXERCISES[name] for name in sorted(_EXERCISES, key=ORDER.index)}


def get(name: str) -> Exercise:
    table = exercises()
    if name not in table:
        close = difflib.get_close_matches(name, list(table), n=1)
        hint = f"; did you mean {close[0]}?" if close else "; `digitlab exercises list` shows them"
        raise DigitlabError(f"no exercise named {name!r}{hint}")
    return table[name]
