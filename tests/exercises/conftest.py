"""Shared helpers: run learner code in this process (fast) and read the verdict of one exercise."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from digitlab.exercises import get
from digitlab.exercises.runner import Verdict, run_exercise
from digitlab.exercises.source import Cell, run_cells

SUBMISSIONS = Path(__file__).parent / "submissions"


def verdict_of(code: str, name: str) -> Verdict:
    """Run `code` as a learner's file (in this process) and check its `name`."""
    submission = run_cells([Cell("learner.py", textwrap.dedent(code))])
    return run_exercise(get(name), submission)


@pytest.fixture(scope="session")
def verdict():
    """`verdict(code, name)`: run `code` as a learner's file in this process and check its `name`."""
    return verdict_of


@pytest.fixture(scope="session")
def submissions():
    """The folder of ready-made submissions (reference.py: every exercise solved the book's way)."""
    return SUBMISSIONS
