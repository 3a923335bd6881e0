"""Every exercise's check and probe, beside its words in the catalogue (`catalogue.py`).

An exercise asks for one name (a function or class) written as the book's cell writes it. Its
`check(obj, ctx)` runs the learner's object on many cases against digitlab's own reference and
returns a one-line "why it is right", or raises `Wrong` with what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .catalogue import CATALOGUE, Entry, entry

if TYPE_CHECKING:  # probes load torch: `exercises list` and `show` do not
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
    """An exercise's words (its `Entry` in the catalogue) with its check and probe."""

    entry: Entry
    check: Check
    probe: Probe | None = None  # confirms a pass outside the learner's process (None: judged otherwise)

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def seconds(self) -> float | None:
        return self.entry.seconds


_EXERCISES: dict[str, Exercise] = {}


def register(name: str, check: Check, probe: Probe | None = None) -> Exercise:
    """Give the catalogue's exercise `name` its check (and probe); the name must be in the catalogue."""
    _EXERCISES[name] = Exercise(CATALOGUE[name], check, probe)
    return _EXERCISES[name]


# The modules that register exercises' checks
MODULES = ("checks_tensors", "checks_baseline", "checks_sgd", "checks_training", "checks_networks", "full_mnist")


def exercises() -> dict[str, Exercise]:
    """All exercises in the chapter's order (importing the modules that define their checks)."""
    import importlib

    for module in MODULES:
        importlib.import_module(f"{__package__}.{module}")
    return {name: _EXERCISES[name] for name in CATALOGUE}


def get(name: str) -> Exercise:
    """The exercise `name` with its check; an unknown name is an error that suggests the nearest."""
    return exercises()[entry(name).name]
