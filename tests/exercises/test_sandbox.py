"""The child process: a crash, a hang, endless output or exit() in one exercise is that exercise's
feedback, and the others are still checked; a file that hangs while loading fails every exercise."""

from __future__ import annotations

import json
from pathlib import Path

from digitlab.exercises.sandbox import Limits, check_cells
from digitlab.exercises.source import Cell, notebook_cells, read_cells, run_cells

MISBEHAVING = """\
import os, ctypes, torch
print("loading my file")
def double_odds(a):
    while True:
        pass
def zip_pairs(a, b):
    while True:
        print("spam " * 20)
def is_3(x):
    os._exit(3)
def rank_and_shape(t):
    ctypes.string_at(0)  # a segmentation fault
def stack_images(images):
    print("about to fail")
    raise ValueError("oops")
def mnist_distance(a, b):
    return (a - b).abs().mean((-1, -2))
"""


def test_every_misbehaviour_is_feedback_and_the_rest_is_checked():
    names = ["double_odds", "zip_pairs", "is_3", "rank_and_shape", "stack_images", "mnist_distance", "mnist_loss"]
    limits = Limits(seconds=2, output=64 * 1024)
    verdicts = {v.exercise: v for v in check_cells([Cell("student.py", MISBEHAVING)], names, limits)}
    assert list(verdicts) == names
    hang = verdicts["double_odds"]
    assert hang.status == "failed" and "took longer than 2 s" in hang.feedback and 2 <= hang.seconds < 10
    spam = verdicts["zip_pairs"]
    assert "printed more than" in spam.feedback
    assert spam.output.startswith("spam spam") and "more bytes)" in spam.output  # capped, and says so
    assert len(spam.output) < 3000
    assert "ended the checker's process (exit code 3)" in verdicts["is_3"].feedback
    assert "segmentation fault" in verdicts["rank_and_shape"].feedback
    crash = verdicts["stack_images"]
    assert crash.feedback == (
        'your stack_images raised ValueError (line 15 of student.py: `raise ValueError("oops")`): oops'
    )
    assert crash.output == "about to fail\n"  # what it printed, not what the file printed while loading
    assert verdicts["mnist_distance"].passed
    assert verdicts["mnist_loss"].status == "missing"
    assert "Traceback" not in json.dumps([v.to_dict() for v in verdicts.values()])


def test_a_file_that_hangs_while_loading_fails_every_exercise():
    cells = [Cell("stuck.py", "def mnist_distance(a, b): return 0\nwhile True: pass\n")]
    verdicts = check_cells(cells, ["mnist_distance", "is_3"], Limits(seconds=2, load_seconds=2))
    assert [v.status for v in verdicts] == ["failed", "failed"]
    assert all("failed before any check: it took longer than 2 s" in v.feedback for v in verdicts)


def test_memory_is_limited():
    code = "import torch\ndef stack_images(images):\n    return torch.zeros(2**30)\n"  # 4 GiB of float32
    (verdict,) = check_cells([Cell("big.py", code)], ["stack_images"], Limits(memory=1536 * 2**20))
    assert verdict.status == "failed" and "ran out of memory" in verdict.feedback, verdict.feedback


def test_a_notebook_is_its_code_cells_and_a_failing_cell_does_not_stop_the_rest(tmp_path):
    notebook = {
        "cells": [
            {"cell_type": "markdown", "source": ["# my work"]},
            {"cell_type": "code", "source": ["%matplotlib inline\n", "!pip install fastbook\n", "x = 1"]},
            {"cell_type": "code", "source": "from fastai.vision.all import *"},
            {"cell_type": "code", "source": ["def mnist_distance(a, b):\n", "    return (a-b).abs().mean((-1, -2))"]},
        ]
    }
    path = tmp_path / "ch4.ipynb"
    path.write_text(json.dumps(notebook))
    cells = read_cells(path)
    assert [c.filename for c in cells] == ["ch4.ipynb cell 2", "ch4.ipynb cell 3", "ch4.ipynb cell 4"]
    assert cells[0].code.splitlines() == ["", "", "x = 1"]  # IPython lines blanked; line numbers kept
    submission = run_cells(cells)
    assert submission.errors == [
        "your code raised ModuleNotFoundError (line 1 of ch4.ipynb cell 3: `from fastai.vision.all import *`): "
        "No module named 'fastai'"
    ]
    assert callable(submission.namespace["mnist_distance"]) and submission.namespace["x"] == 1


def test_a_missing_function_says_where_the_code_stopped(verdict):
    code = "def is_3(x):\n    return True\nundefined_name\ndef mnist_distance(a, b): pass\n"
    result = verdict(code, "mnist_distance")
    assert result.status == "missing"
    assert "does not define mnist_distance; your code stopped earlier" in result.feedback
    assert "line 3 of learner.py" in result.feedback and "'undefined_name' is not defined" in result.feedback


def test_notebook_cells_refuses_what_is_not_a_notebook():
    import pytest

    from digitlab.errors import DigitlabError

    with pytest.raises(DigitlabError, match="not a notebook"):
        notebook_cells("{}", "x.ipynb")


def test_the_code_runs_in_a_folder_of_its_own_that_is_gone_afterwards(tmp_path, monkeypatch):
    """Sandboxed: a fresh folder the checker's machine never sees; without the sandbox a temporary
    folder, removed afterwards; the checker's own folder is untouched either way."""
    monkeypatch.chdir(tmp_path)
    code = (
        "import os\n"
        "def double_odds(a):\n"
        "    open('scratch.txt', 'w').write('x')\n"
        "    print(os.getcwd())\n"
        "    return [2*o for o in a if o % 2 == 1]\n"
    )
    for isolate in (True, False):
        (verdict,) = check_cells([Cell("w.py", code)], ["double_odds"], Limits(isolate=isolate))
        assert verdict.passed
        folders = {Path(line) for line in verdict.output.split()}  # the check and the probe print it
        assert len(folders) == 1 and tmp_path not in folders
        folder = folders.pop()
        assert folder.name == "submission" if isolate else folder.name.startswith("digitlab-check-")
        assert not (folder / "scratch.txt").exists() and not (tmp_path / "scratch.txt").exists()
