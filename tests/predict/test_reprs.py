"""What a learner sees when they print what the library returns: a line about it, not its tensors."""

from __future__ import annotations

import torch

from digitlab.artifacts.metrics import TopLosses
from digitlab.predict.numbers import NumberReading
from digitlab.predict.predictor import Predictions
from digitlab.reading.segment import FoundDigit


def predictions(n: int) -> Predictions:
    probabilities = torch.full((n, 2), 0.5, dtype=torch.float64)
    probabilities[:, 0] = 0.9
    probabilities[:, 1] = 0.1
    return Predictions(("3", "7"), torch.zeros(n, dtype=torch.int64), probabilities, [[("3", 0.9)]] * n)


def test_predictions_say_their_answers_briefly():
    text = repr(predictions(1000))
    assert text.startswith("Predictions(1000 images") and "3 (0.90)" in text and "more" in text
    assert "tensor(" not in text and len(text) < 300


def test_top_losses_say_the_worst_few():
    k = 20
    top = TopLosses(
        torch.arange(k), torch.zeros(k, 28, 28, dtype=torch.uint8), torch.zeros(k, dtype=torch.int64),
        torch.ones(k, dtype=torch.int64), torch.linspace(5, 1, k, dtype=torch.float64),
        torch.full((k,), 0.9, dtype=torch.float64), "cross_entropy",
    )  # fmt: skip
    text = repr(top)
    assert text.startswith("TopLosses(20 digits by cross_entropy") and "#0 0->1 (5.00)" in text
    assert "tensor(" not in text and len(text) < 300


def test_a_number_reading_says_the_number():
    digits = [FoundDigit((10 * i, 0, 10 * i + 8, 20), 0, torch.zeros(28, 28, dtype=torch.uint8)) for i in range(3)]
    reading = NumberReading(digits, lambda: predictions(3))
    text = repr(reading)
    assert text.startswith("NumberReading('333': 3 digits") and "tensor(" not in text


def test_show_on_a_photo_points_to_what_does_show_it(tmp_path, capsys):
    from PIL import Image

    from digitlab.cli import main

    Image.new("L", (600, 800)).save(tmp_path / "seven.jpg")
    assert main(["show", str(tmp_path / "seven.jpg")]) == 2
    err = capsys.readouterr().err
    assert "600x800" in err and "digitlab predict" in err and "--show" in err
