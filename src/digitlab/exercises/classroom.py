"""Checking files and whole classes: what the command line runs, one submission at a time.

A class folder holds one submission per student: a `.py` or `.ipynb` file (the student is the file's
name) or a sub-folder of such files (the student is the folder's name). Each submission runs in its
own child process (sandbox.py), so one student's crash, hang or endless output never stops the rest.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from ..config import Settings
from ..core.progress import Log
from ..errors import DigitlabError
from .feedback import Wrong
from .full_mnist import MnistExercise, judge
from .runner import FAILED, Verdict
from .sandbox import Limits, check_cells
from .source import SUFFIXES, read_cells

Judges = dict[str, Callable[[Verdict], Verdict]]


def find_submissions(folder: Path, exclude: Path | None = None) -> dict[str, Path]:
    """{student: file or folder}, sorted; hidden files and folders, and `exclude` (the report's folder), left out.

    A student is named by the file's stem, or by its full name where two files share a stem
    (alice.py and alice.ipynb): no submission is dropped.
    """
    if not folder.is_dir():
        raise DigitlabError(f"{folder}: not a folder of submissions")
    skip = exclude.resolve() if exclude is not None else None
    paths = [
        p
        for p in sorted(folder.iterdir())
        if not p.name.startswith((".", "__")) and (p.is_dir() or p.suffix in SUFFIXES) and p.resolve() != skip
    ]
    stems = [p.stem if p.is_file() else p.name for p in paths]
    found = {(stem if stems.count(stem) == 1 else p.name): p for stem, p in zip(stems, paths)}
    if not found:
        raise DigitlabError(f"{folder}: no .py or .ipynb files or student folders in it")
    return found


def mentions(paths: list[Path], name: str) -> bool:
    """Whether any submission's code mentions `name` (the full-MNIST data is loaded only then)."""
    for path in paths:
        try:
            if any(name in cell.code for cell in read_cells(path)):
                return True
        except DigitlabError:
            continue
    return False


@contextmanager
def mnist_data(
    names: list[str], paths: list[Path], settings: Settings, log: Log
) -> Iterator[tuple[Path | None, Judges]]:
    """The full-MNIST exercise's data file for the children, and the judge that holds its labels
    (nothing when no submission has a train_mnist to check)."""
    if "train_mnist" not in names or not mentions(paths, "train_mnist"):
        yield None, {}
        return
    try:
        exercise = MnistExercise.load(settings, log)
    except DigitlabError as e:
        raise DigitlabError(
            f"train_mnist needs the mnist dataset: {e}; `digitlab data get mnist` fetches it (or leave train_mnist "
            "out with --only)"
        ) from None

    def judge_verdict(verdict: Verdict) -> Verdict:
        # the predictions were checked to be a list of ints (sandbox.py); the time is this process's own clock
        predictions = verdict.payload.get("predictions") or []
        try:
            feedback = judge(predictions, exercise.held_out_y, verdict.seconds)
        except Wrong as e:
            return replace(verdict, status=FAILED, feedback=str(e), payload={})
        return replace(verdict, feedback=feedback, payload={})

    with tempfile.TemporaryDirectory(prefix="digitlab-mnist-") as tmp:
        yield exercise.save_for_learner(Path(tmp) / "mnist_exercise.npz"), {"train_mnist": judge_verdict}


def check_path(
    path: Path, names: list[str], limits: Limits, data: Path | None, judges: Judges, within: Path | None = None
) -> list[Verdict]:
    """The verdicts for one submission; a file that cannot be read (or links out of `within`) fails every exercise."""
    try:
        cells = read_cells(path, within)
    except DigitlabError as e:
        return [Verdict(n, FAILED, f"the submission could not be read: {e}") for n in names]
    try:
        return check_cells(cells, names, limits, data, judges)
    except Exception as e:  # a checker's bug on one submission: the class's report is still written
        why = f"the checker itself failed on this submission ({type(e).__name__}: {e}); please report it"
        return [Verdict(n, FAILED, why) for n in names]
