"""The chapter's figures: each PNG is real (signature, size, not blank) and its numbers are the library's."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

from digitlab.baseline import PixelSimilarity, mnist_distance
from digitlab.digits import Digits
from digitlab.errors import DigitlabError
from digitlab.plots.chapter import (PixelTable, pixel_table_html, plot_activations, plot_against_ideals,
                                    plot_distance_histograms, plot_ideal_digits, plot_roller_coaster,
                                    plot_sgd_quadratic, resolve_crop, roller_coaster)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path, size: tuple[int, int] | None = None) -> None:
    """A PNG file of `size` (width, height) pixels with something drawn on it."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        if size is not None:
            assert image.size == size
        gray = np.asarray(image.convert("L"), dtype=np.float64)
    assert gray.var() > 20  # a blank (all-white) canvas has variance 0


@pytest.fixture
def digits(digits_factory) -> Digits:
    """Three classes of 8 synthetic stroke digits each, labels as indices into ("3", "7", "1")."""
    images, labels = digits_factory(8, (3, 7, 1), seed=0)
    classes = ("3", "7", "1")
    index = torch.tensor([classes.index(str(v)) for v in labels])
    return Digits(torch.from_numpy(images), index, classes)


# ---- pixels as numbers -------------------------------------------------------------------

def _cells(html: str) -> list[tuple[int, int, str]]:
    """(shade red channel, value, text colour) of every <td>."""
    found = re.findall(r'<td style="[^"]*background-color:rgb\((\d+),\d+,\d+\);color:([^"]+)">(\d+)</td>', html)
    return [(int(r), int(v), ink) for r, ink, v in found]


def test_pixel_table_html_has_a_cell_per_pixel_and_dark_ink_is_dark(digits):
    image = digits.images[0]
    html = pixel_table_html(image)
    cells = _cells(html)
    assert len(cells) == html.count("<td") == 28 * 28
    assert [v for _, v, _ in cells] == image.flatten().tolist()
    shade, value, ink = max(cells, key=lambda c: c[1])
    assert value == int(image.max()) and shade < 60 and ink != "#000000"  # light text on a dark cell
    lightest = min(cells, key=lambda c: c[1])
    assert lightest[0] > 200 and lightest[2] == "#000000"
    assert "<link" not in html and "class=" not in html  # inline styles only


@pytest.mark.parametrize("crop, n_cells", [("top-left", 14 * 14), ("centre", 14 * 14), ("center", 14 * 14),
                                           ("4:15,4:22", 11 * 18), (None, 28 * 28)])
def test_pixel_table_crops(digits, crop, n_cells):
    assert pixel_table_html(digits.images[1], crop).count("<td") == n_cells


def test_pixel_table_class_renders_and_saves(digits, tmp_path):
    table = PixelTable(digits.images[2].numpy(), "top-left")  # numpy input works too
    assert table._repr_html_() == pixel_table_html(digits.images[2], resolve_crop("top-left"))
    table.save_png(tmp_path / "pixels.png", title="top left")
    assert_png(tmp_path / "pixels.png")
    with pytest.raises(DigitlabError):
        PixelTable(digits.images[0].float())


# ---- pixel similarity --------------------------------------------------------------------

def test_plot_ideal_digits(digits, tmp_path):
    model = PixelSimilarity.fit(digits)
    ink = plot_ideal_digits(model.ideals, digits.classes, tmp_path / "ideals.png")
    assert_png(tmp_path / "ideals.png", (480, 180))  # 3 panels of 1.6 x 1.8 in at 100 dpi
    assert ink == pytest.approx({c: float(i.mean()) for c, i in zip(digits.classes, model.ideals)})


def test_plot_against_ideals_shows_mnist_distance(digits, tmp_path):
    model = PixelSimilarity.fit(digits)
    image = digits.images[digits.labels.tolist().index(1)]  # a "7"
    shown = plot_against_ideals(image, model.ideals, digits.classes, tmp_path / "against.png")
    assert_png(tmp_path / "against.png", (800, 540))  # 5 x 3 panels
    x = image.float() / 255
    for name, ideal in zip(digits.classes, model.ideals):
        assert shown[name]["l1"] == pytest.approx(float(mnist_distance(x, ideal, "l1")))
        assert shown[name]["rmse"] == pytest.approx(float(mnist_distance(x, ideal, "rmse")))
    assert min(shown, key=lambda c: shown[c]["l1"]) == "7"
    # a float image in [0, 1] gives the same numbers as its uint8 original
    from_float = plot_against_ideals(x, model.ideals, digits.classes, tmp_path / "f.png")
    assert {c: pytest.approx(d) for c, d in shown.items()} == from_float


def test_plot_distance_histograms_matches_the_model(digits, tmp_path):
    model = PixelSimilarity.fit(digits, metric="rmse")
    result = plot_distance_histograms(model, digits, tmp_path / "hist.png")
    assert_png(tmp_path / "hist.png", (960, 260))  # 3 panels of 3.2 x 2.6 in
    table, predicted = model.distances(digits.images), model.predict(digits.images)
    for true, name in enumerate(digits.classes):
        mine = digits.labels == true
        assert result[name]["n"] == int(mine.sum())
        assert result[name]["accuracy"] == pytest.approx(float((predicted[mine] == true).float().mean()))
        expected = {ideal: float(table[mine, j].mean()) for j, ideal in enumerate(digits.classes)}
        assert result[name]["mean"] == pytest.approx(expected)


# ---- activations and SGD -----------------------------------------------------------------

def test_plot_activations_derivatives_from_autograd(tmp_path):
    result = plot_activations(tmp_path / "act.png")
    assert_png(tmp_path / "act.png", (800, 300))
    x, s = result["x"], result["sigmoid"]
    assert x[0] == -2 and x[-1] == 2
    assert torch.allclose(s, torch.sigmoid(x))
    assert torch.allclose(result["sigmoid_grad"], s * (1 - s), atol=1e-6)
    assert torch.equal(result["relu_grad"], (x > 0).float())


def test_plot_sgd_quadratic_trajectories(tmp_path):
    result = plot_sgd_quadratic(tmp_path / "sgd.png", lrs=(0.1, 1.1), steps=8, start=-1.5)
    assert_png(tmp_path / "sgd.png", (800, 320))
    for lr, xs in result.items():
        assert xs == pytest.approx([-1.5 * (1 - 2 * lr) ** k for k in range(9)], rel=1e-5)
    assert abs(result[0.1][-1]) < 0.3  # converges towards the minimum at 0
    assert abs(result[1.1][-1]) > 4 * 1.5  # overshoots further every step: diverges


def test_roller_coaster_is_deterministic_and_learns(tmp_path):
    fit = roller_coaster(seed=42, steps=10, lr=1e-5)
    again = roller_coaster(seed=42, steps=10, lr=1e-5)
    assert fit["losses"] == again["losses"] and fit["final_params"] == again["final_params"]
    assert roller_coaster(seed=1)["losses"] != fit["losses"]
    losses = fit["losses"]
    assert len(losses) == 11 and len(fit["params"]) == 11
    assert all(b <= a for a, b in zip(losses, losses[1:]))
    assert losses[-1] < losses[0] / 10
    # the reported loss is the MSE of the reported parameters
    a, b, c = fit["final_params"]
    t, speed = fit["t"], fit["speed"]
    assert losses[-1] == pytest.approx(float(((a * t ** 2 + b * t + c - speed) ** 2).mean()), rel=1e-5)


def test_plot_roller_coaster(tmp_path):
    shown = plot_roller_coaster(tmp_path / "rc.png", seed=3, steps=6)
    assert_png(tmp_path / "rc.png", (800, 320))
    assert shown["losses"] == roller_coaster(seed=3, steps=6)["losses"]
