"""The model answers are right where the seeds' sample answers were wrong, and the computed answers
are computed: the 3x3 selection, a learning rate too high, accuracy's missing gradient, backward."""

from __future__ import annotations

import json
from itertools import pairwise

import torch

from digitlab.exercises.questionnaire import QUESTIONS
from digitlab.exercises.quiz import item


def test_pixel_values_as_the_book_loads_mnist():
    answer = QUESTIONS[0][1]
    assert "0 is black (the background) and 255 is white (the strokes" in answer
    assert "three such grids" in answer


def test_the_bottom_right_four_are_tns_1_1():
    entry = item(9)
    assert "tns[1:, 1:] gives tensor([[10, 12], [16, 18]])" in entry["answer"]
    tns = torch.tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]]) * 2
    assert entry["computed"].endswith(str(tns[1:, 1:].tolist()))


def test_a_learning_rate_far_too_high_diverges():
    entry = item(17)
    assert "diverges" in entry["answer"] and "bounces" in entry["answer"]
    diverging = [float(v) for v in entry["computed"].split("lr 1.1 (diverges) ")[1].split()]
    assert all(abs(b) > abs(a) for a, b in pairwise(diverging))  # it grows at every step
    bouncing = [float(v) for v in entry["computed"].split("lr 0.9 (bounces) ")[1].split(";")[0].split()]
    assert all(a * b < 0 and abs(b) < abs(a) for a, b in pairwise(bouncing))  # sides swap, it shrinks


def test_accuracy_carries_no_gradient():
    computed = item(20)["computed"]
    before, after = computed.split("accuracy ")[1].split(",")[0], computed.split("0.001: ")[1].split(" ")[0]
    assert before == after and computed.endswith("carry a gradient? False")


def test_backward_adds_to_grad():
    assert item(31)["computed"].endswith("x.grad = 6; after a second backward() x.grad = 12")


def test_every_question_is_the_books():
    assert len(QUESTIONS) == 37
    assert QUESTIONS[3][0].startswith("What is a list comprehension?")
    assert QUESTIONS[-1][0].startswith("The universal approximation theorem")


def test_the_dataloader_over_range_15_gives_every_number_once():
    computed = item(24)["computed"]
    batches = json.loads(computed.split(" = ", 1)[1])  # a printed list of lists of ints
    assert [len(b) for b in batches] == [5, 5, 5] and sorted(i for b in batches for i in b) == list(range(15))


def test_bias_relu_and_the_loop_race_are_computed():
    assert item(28)["computed"].endswith("x @ w = 0 whatever w is; x @ w + b with b = 0.7 gives 0.7")
    assert item(36)["computed"].endswith("[0.0, 0.0, 0.0, 1.0, 2.0] both (equal: True)")
    race = item(8)["computed"]
    loop = float(race.split("a Python loop ")[1].split(" ms")[0])
    tensor = float(race.split("one tensor operation ")[1].split(" ms")[0])
    assert loop > 0 and tensor > 0  # timings only shown, never asserted against each other


def test_figures_for_questions_without_one_are_said_not_silently_skipped(tmp_path, capsys):
    from digitlab.cli import main

    assert main(["exercises", "quiz", "--number", "1", "--reveal", "--figures", str(tmp_path / "figs")]) == 0
    err = capsys.readouterr().err
    assert "no figure" in err and "21" in err and not (tmp_path / "figs").exists()
    assert main(["exercises", "quiz", "--number", "21", "--reveal", "--figures", str(tmp_path / "figs")]) == 0
    assert (tmp_path / "figs" / "activations.png").is_file() and "no figure" not in capsys.readouterr().err
