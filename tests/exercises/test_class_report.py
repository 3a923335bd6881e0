"""`digitlab exercises check --all`: one report for a class, rendered by headless chromium, whose rows and
pass counts are the verdicts; a student's hang or endless output never stops the others."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from digitlab.cli import main

ONLY = ["double_odds", "mnist_distance", "mnist_loss"]


@pytest.fixture(scope="module")
def class_folder(tmp_path_factory, submissions):
    """alice: the reference; bob: a notebook with two mistakes; carol: a folder whose code hangs in one
    exercise; dave: prints forever while loading; eve: a file that is not a notebook."""
    folder = tmp_path_factory.mktemp("class") / "submissions"
    folder.mkdir()
    shutil.copy(submissions / "reference.py", folder / "alice.py")
    bob = {
        "cells": [
            {"cell_type": "code", "source": ["import torch\n"]},
            {"cell_type": "code", "source": ["def double_odds(a): return [2*o for o in a if o % 2 == 1]\n"]},
            {"cell_type": "code", "source": ["def mnist_distance(a, b): return (a-b).abs().mean(-1)\n"]},
            {"cell_type": "code", "source": ["def mnist_loss(p, t): return torch.where(t==1, 1-p, p).mean()\n"]},
        ]
    }
    (folder / "bob.ipynb").write_text(json.dumps(bob))
    (folder / "carol").mkdir()
    (folder / "carol" / "work.py").write_text(
        "def double_odds(a):\n    while True: pass\ndef mnist_distance(a, b): return (a-b).abs().mean((-1,-2))\n"
    )
    (folder / "dave.py").write_text("while True: print('hello')\n")
    (folder / "eve.ipynb").write_text("this is not json")
    (folder / ".hidden.py").write_text("raise SystemExit")  # not a student
    return folder


@pytest.fixture(scope="module")
def report(class_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    argv = ["exercises", "check", "--all", str(class_folder), "--out", str(out), "--only", *ONLY]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.argv", ["digitlab"])
        code = main([*argv, "--time-limit", "2", "--json", "--quiet"])
    assert code == 1  # bob and others failed some: as for one file, 1 (the report is written)
    return out


def test_the_csv_has_a_row_per_student_and_exercise(report):
    rows = list(csv.DictReader((report / "report.csv").open(encoding="utf-8")))
    students = ["alice", "bob", "carol", "dave", "eve"]
    assert [(r["student"], r["exercise"]) for r in rows] == [(s, e) for s in students for e in ONLY]
    status = {(r["student"], r["exercise"]): r["status"] for r in rows}
    assert [status["alice", e] for e in ONLY] == ["passed"] * 3
    assert [status["bob", e] for e in ONLY] == ["passed", "failed", "failed"]
    assert [status["carol", e] for e in ONLY] == ["failed", "passed", "missing"]
    assert all(status["dave", e] == "failed" for e in ONLY) and all(status["eve", e] == "failed" for e in ONLY)
    feedback = {(r["student"], r["exercise"]): r["feedback"] for r in rows}
    assert "you averaged one axis" in feedback["bob", "mnist_distance"]
    assert "took longer than 2 s" in feedback["carol", "double_odds"]
    assert "printed more than 1 MiB" in feedback["dave", "mnist_loss"]
    assert "could not be read: eve.ipynb: not a notebook" in feedback["eve", "double_odds"]
    assert float(next(r for r in rows if r["student"] == "carol")["seconds"]) >= 2


def test_the_report_renders_offline_with_the_same_counts(report, browser_page):
    page_file = report / "report.html"
    requests: list[str] = []
    with browser_page() as tab:
        tab.on("request", lambda request: requests.append(request.url))
        tab.goto(page_file.as_uri())
        grid = tab.eval_on_selector_all(
            "#grid tr", "rows => rows.map(r => Array.from(r.children).map(c => c.textContent))"
        )
        headings = tab.eval_on_selector_all("h2", "hs => hs.map(h => h.textContent)")
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    assert grid[0] == ["student", *ONLY, "passed"]
    body = {row[0]: row[1:] for row in grid[1:]}
    assert body["alice"] == ["✓", "✓", "✓", "3/3"]
    assert body["bob"] == ["✓", "✗", "✗", "1/3"]
    assert body["carol"] == ["✗", "✓", "–", "1/3"]
    assert body["passed"] == ["2", "2", "1", ""]  # per exercise, over the five students
    counts = [h.split(" in ")[0] for h in headings]
    assert counts == [
        "alice: 3 of 3 passed",
        "bob: 1 of 3 passed",
        "carol: 1 of 3 passed",
        "dave: 0 of 3 passed",
        "eve: 0 of 3 passed",
    ]
    assert float(headings[2].split(" in ")[1].removesuffix(" s")) >= 2  # carol's hang took the 2 s limit


def test_no_submission_is_dropped_or_taken_for_one(tmp_path):
    from digitlab.exercises.classroom import find_submissions

    for name in ("alice.py", "alice.ipynb", "bob.py", "notes.txt"):
        (tmp_path / name).touch()
    for name in ("carol", "__pycache__", ".ipynb_checkpoints"):
        (tmp_path / name).mkdir()
    (tmp_path / "class-report").mkdir()  # the report written inside the folder is not a student
    found = find_submissions(tmp_path, exclude=tmp_path / "class-report")
    assert list(found) == ["alice.ipynb", "alice.py", "bob", "carol"]
    assert found["bob"] == tmp_path / "bob.py"


def test_a_whole_class_report_fits_a_laptop_window(tmp_path, browser_page):
    from digitlab.exercises import exercises
    from digitlab.exercises.class_report import write_class_report
    from digitlab.exercises.runner import Verdict

    feedback = "your mnist_distance returns shape (1010, 28): you averaged one axis; the book averages two " * 2
    names = list(exercises())  # every exercise: the grid's widest
    results = {s: [Verdict(n, "failed", feedback, 0.1, "x" * 300) for n in names] for s in ("alice", "bob")}
    html_path, _ = write_class_report(results, tmp_path / "report")
    with browser_page(viewport={"width": 1200, "height": 800}) as tab:
        tab.goto(html_path.as_uri())
        assert tab.evaluate("document.documentElement.scrollWidth") <= 1200  # was 2,506 px
