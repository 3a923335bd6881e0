"""`digitlab exercises`: list, show, check and quiz; exit codes and one-line errors."""

from __future__ import annotations

import json

import pytest

from digitlab.cli import main
from digitlab.exercises import exercises
from digitlab.exercises.questionnaire import QUESTIONS


def test_list_and_show(capsys):
    assert main(["exercises", "list", "--json"]) == 0
    names = [e["name"] for e in json.loads(capsys.readouterr().out)["exercises"]]
    assert names == list(exercises()) and len(names) == 18
    assert names[:2] == ["stack_images", "rank_and_shape"] and names[-1] == "train_mnist"
    assert main(["exercises", "show", "mnist_distance"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("mnist_distance: mnist_distance, with broadcasting")
    assert "def mnist_distance(a, b):" in shown


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["exercises", "show", "mnist_distanse"], "no exercise named 'mnist_distanse'; did you mean mnist_distance?"),
        (["exercises", "check", "nowhere.py"], "nowhere.py: no such file or folder"),
        (["exercises", "check"], "give one FILE to check, or --all FOLDER"),
        (["exercises", "check", "x.py", "--all", "y"], "give one FILE to check, or --all FOLDER"),
        (["exercises", "check", "--all", "missing-folder"], "missing-folder: not a folder of submissions"),
        (["exercises", "check", "x.py", "--time-limit", "0"], "--time-limit must be between 0.1 and 86,400 seconds"),
        (["exercises", "check", "x.py", "--time-limit", "inf"], "--time-limit must be between 0.1 and 86,400"),
        (["exercises", "check", "x.py", "--load-time-limit", "nan"], "--load-time-limit must be between 0.1 and"),
        (["exercises", "check", "x.py", "--memory", "100"], "--memory must be between 512 and"),
        (["exercises", "quiz", "--number", "99", "--reveal"], "there are 37 questions; 99 is not one of them"),
    ],
)
def test_errors_are_one_line_and_exit_2(capsys, argv, words):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1, err


def test_a_file_of_another_kind_is_refused_before_anything_runs(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("print('ran')")
    assert main(["exercises", "check", str(tmp_path / "notes.txt")]) == 2
    captured = capsys.readouterr()
    assert "not a .py file or a notebook" in captured.err and "ran" not in captured.out


def test_check_exit_codes(capsys, tmp_path):
    good, bad = tmp_path / "good.py", tmp_path / "bad.py"
    good.write_text("def double_odds(a): return [2*o for o in a if o % 2 == 1]\n")
    bad.write_text("def double_odds(a): return [2*o for o in a]\n")
    assert main(["exercises", "check", str(good), "--quiet"]) == 0  # exercises not written yet are not failures
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("1 passed, 0 failed; ") and "not defined yet" in last  # the others: said, not counted
    assert main(["exercises", "check", str(bad), "--quiet", "--only", "double_odds", "is_3"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("✗ double_odds") and "every number was doubled" in lines[0]
    assert lines[1].startswith("- is_3") and lines[-1] == "0 passed, 2 failed"


def test_quiz_reveals_on_request_and_stops_at_q(capsys, monkeypatch):
    replies = iter(["", "s", "q"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(replies))
    assert main(["exercises", "quiz"]) == 0
    out = capsys.readouterr().out
    assert "Q1." in out and "Q2." in out and "Q3." in out and "Q4." not in out
    assert out.count("Answer:") == 1  # Q1 revealed, Q2 skipped, quit at Q3


def test_quiz_without_input_stops_cleanly(capsys, monkeypatch):
    def no_input(prompt):
        raise EOFError

    monkeypatch.setattr("builtins.input", no_input)
    assert main(["exercises", "quiz"]) == 0
    assert "Answer:" not in capsys.readouterr().out


def test_quiz_json_has_every_question_with_an_answer(capsys, tmp_path):
    assert main(["exercises", "quiz", "--json", "--figures", str(tmp_path)]) == 0
    items = json.loads(capsys.readouterr().out)["questions"]
    assert [q["number"] for q in items] == list(range(1, len(QUESTIONS) + 1)) and len(items) == 37
    assert all(len(q["answer"]) > 30 for q in items)
    assert items[20]["figure"] == str(tmp_path / "activations.png") and (tmp_path / "activations.png").stat().st_size


def test_no_mnist_data_is_one_line_before_anything_runs(capsys, monkeypatch, submissions):
    from digitlab.errors import DataError

    def no_data(*args, **kwargs):
        raise DataError("mnist: no cached copy and no network")

    monkeypatch.setattr("digitlab.exercises.full_mnist.load_dataset", no_data)
    assert main(["exercises", "check", str(submissions / "reference.py"), "--only", "train_mnist", "is_3"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert "train_mnist needs the mnist dataset: mnist: no cached copy" in captured.err and "--only" in captured.err
