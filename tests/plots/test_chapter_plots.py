"""The chapter's figures: each is a Figure whose `.values` are the library's numbers, and its PNG is real
(signature, size, not blank)."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import torch
from PIL import Image

from digitlab.baseline import PixelSimilarity, mnist_distance
from digitlab.data.digits import Digits
from digitlab.errors import DigitlabError
from digitlab.plots.chapter import plot_against_ideals, plot_distance_histograms, plot_ideal_digits
from digitlab.plots.common import DigitlabFigure
from digitlab.plots.pixels import PixelTable, pixel_table_html, plot_pixel_table
from digitlab.plots.sgd import (
    NOISE_STD,
    plot_activations,
    plot_roller_coaster,
    plot_sgd_quadratic,
    roller_coaster,
    sgd_quadratic,
)
from digitlab.reading.crops import resolve_crop

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


@pytest.mark.parametrize(
    "crop, n_cells",
    [("top-left", 14 * 14), ("centre", 14 * 14), ("center", 14 * 14), ("4:15,4:22", 11 * 18), (None, 28 * 28)],
)
def test_pixel_table_crops(digits, crop, n_cells):
    assert pixel_table_html(digits.images[1], crop).count("<td") == n_cells


def test_pixel_table_class_renders_html_text_and_png(digits, tmp_path):
    image = digits.images[2]
    table = PixelTable(image.numpy(), "top-left")  # numpy input works too
    assert table._repr_html_() == pixel_table_html(image, resolve_crop("top-left"))
    assert torch.equal(table.values, image[:14, :14])
    # a terminal gets the numbers with their row and column indices, no HTML
    lines = repr(table).splitlines()
    assert lines[0] == "PixelTable(top-left: rows 0-13, columns 0-13)"
    assert lines[1].split() == [str(c) for c in range(14)]
    assert [[int(v) for v in line.split()] for line in lines[2:]] == [[r, *image[r, :14].tolist()] for r in range(14)]
    assert str(table) == "\n".join(lines[1:]) and "<" not in str(table)
    fig = table.save_png(tmp_path / "pixels.png", title="top left")
    assert_png(tmp_path / "pixels.png")
    assert np.array_equal(fig.values["pixels"], image[:14, :14].numpy()) and fig.values["rows"] == list(range(14))
    with pytest.raises(DigitlabError):
        PixelTable(image.float())
    with pytest.raises(DigitlabError, match="top-right"):  # a bad name lists the good ones
        PixelTable(image, "top-middle")


def test_plot_pixel_table_draws_each_value_on_its_cell(digits):
    image = digits.images[0]
    fig = plot_pixel_table(image, "4:15,4:22")
    (ax,) = fig.axes
    texts = [int(t.get_text()) for t in ax.texts]
    assert texts == image[4:15, 4:22].flatten().tolist()
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(c) for c in range(4, 22)]
    assert np.array_equal(ax.images[0].get_array(), image[4:15, 4:22].numpy())


# ---- pixel similarity --------------------------------------------------------------------


def test_plot_ideal_digits(digits, tmp_path):
    model = PixelSimilarity.fit(digits)
    fig = plot_ideal_digits(model.ideals, digits.classes, path=tmp_path / "ideals.png")
    assert isinstance(fig, DigitlabFigure)
    assert_png(tmp_path / "ideals.png", (480, 180))  # 3 panels of 1.6 x 1.8 in at 100 dpi
    assert fig.values == pytest.approx({c: float(i.mean()) for c, i in zip(digits.classes, model.ideals)})
    for ax, ideal in zip(fig.axes, model.ideals):  # each panel draws its ideal on a fixed 0..1 scale
        assert np.allclose(ax.images[0].get_array(), ideal.numpy()) and ax.images[0].get_clim() == (0, 1)


def test_ten_ideal_digits_wrap_so_their_titles_stay_readable(tmp_path):
    classes = tuple(str(d) for d in range(10))
    plot_ideal_digits(torch.rand(10, 28, 28), classes, path=tmp_path / "ideals.png")
    assert_png(tmp_path / "ideals.png", (800, 360))  # two rows of five panels, not one row of ten


def test_plot_against_ideals_shows_mnist_distance(digits, tmp_path):
    model = PixelSimilarity.fit(digits)
    image = digits.images[digits.labels.tolist().index(1)]  # a "7"
    fig = plot_against_ideals(image, model.ideals, digits.classes, title="a 7", path=tmp_path / "against.png")
    shown = fig.values
    assert_png(tmp_path / "against.png", (800, 540))  # 5 x 3 panels
    assert fig.get_suptitle() == "a 7"
    x = image.float() / 255
    for name, ideal in zip(digits.classes, model.ideals):
        assert shown[name]["l1"] == pytest.approx(float(mnist_distance(x, ideal, "l1")))
        assert shown[name]["rmse"] == pytest.approx(float(mnist_distance(x, ideal, "rmse")))
    assert min(shown, key=lambda c: shown[c]["l1"]) == "7"
    # a float image in [0, 1] gives the same numbers as its uint8 original
    from_float = plot_against_ideals(x, model.ideals, digits.classes).values
    assert {c: pytest.approx(d) for c, d in shown.items()} == from_float


def test_plot_distance_histograms_matches_the_model(digits, tmp_path):
    model = PixelSimilarity.fit(digits, metric="rmse")
    result = plot_distance_histograms(model, digits, path=tmp_path / "hist.png").values
    assert_png(tmp_path / "hist.png", (960, 260))  # 3 panels of 3.2 x 2.6 in
    table, predicted = model.distances(digits.images), model.predict(digits.images)
    for true, name in enumerate(digits.classes):
        mine = digits.labels == true
        assert result[name]["n"] == int(mine.sum())
        assert result[name]["accuracy"] == pytest.approx(float((predicted[mine] == true).float().mean()))
        expected = {ideal: float(table[mine, j].mean()) for j, ideal in enumerate(digits.classes)}
        assert result[name]["mean"] == pytest.approx(expected)


# ---- activations and SGD -----------------------------------------------------------------


def test_plot_activations_ranges_show_the_shapes(tmp_path):
    fig = plot_activations(path=tmp_path / "act.png")
    assert_png(tmp_path / "act.png", (800, 300))
    sigmoid_ax, relu_ax = fig.axes
    # the ranges as drawn: sigmoid on -6..6, where it flattens towards 0 and 1; ReLU on -2..2
    sig_x, relu_x = sigmoid_ax.lines[0].get_xdata(), relu_ax.lines[0].get_xdata()
    assert (sig_x.min(), sig_x.max()) == (-6, 6) and (relu_x.min(), relu_x.max()) == (-2, 2)
    sig_y = sigmoid_ax.lines[0].get_ydata()
    assert sig_y[0] < 0.01 and sig_y[-1] > 0.99  # both flat ends are in the picture
    s = fig.values["sigmoid"]
    assert torch.allclose(s["y"], torch.sigmoid(s["x"]))
    assert torch.allclose(s["grad"], s["y"] * (1 - s["y"]), atol=1e-6)
    assert np.allclose(sigmoid_ax.lines[1].get_ydata(), s["grad"].numpy())  # the dashed line is the derivative
    relu = fig.values["relu"]
    assert torch.equal(relu["grad"], (relu["x"] > 0).float())


def _axes_fraction(ax, x, y) -> np.ndarray:
    """Data points -> axes fractions (0..1 across the panel), shape (..., 2)."""
    return ax.transAxes.inverted().transform(ax.transData.transform(np.column_stack([x, y])))


def test_plot_sgd_quadratic_trajectories_and_a_clear_arrow(tmp_path):
    fig = plot_sgd_quadratic(lrs=(0.1, 1.1), steps=8, start=-1.5, path=tmp_path / "sgd.png")
    assert_png(tmp_path / "sgd.png", (800, 320))
    result = fig.values
    for lr, xs in result.items():
        assert xs == pytest.approx([-1.5 * (1 - 2 * lr) ** k for k in range(9)], rel=1e-5)
        assert xs == sgd_quadratic(lr, 8, -1.5)
    assert abs(result[0.1][-1]) < 0.3  # converges towards the minimum at 0
    assert abs(result[1.1][-1]) > 4 * 1.5  # overshoots further every step: diverges
    fig.png()  # lays the figure out, so text has its final place
    for ax, (lr, xs) in zip(fig.axes, result.items()):
        markers = _axes_fraction(ax, xs, np.square(xs))  # (9, 2)
        (arrow,) = [t for t in ax.texts if getattr(t, "arrow_patch", None) is not None]
        tail, tip = _axes_fraction(ax, *zip(arrow.xyann, arrow.xy))
        assert np.allclose(tail, markers[0])  # it starts at the start, along the tangent (slope 2x):
        assert (arrow.xy[1] - arrow.xyann[1]) / (arrow.xy[0] - arrow.xyann[0]) == pytest.approx(2 * xs[0])
        assert np.linalg.norm(tip - tail) > 0.05  # long enough to see
        along = tail + np.linspace(0, 1, 50)[:, None] * (tip - tail)  # (50, 2) points of the arrow
        gaps = np.linalg.norm(along[:, None] - markers[None, 1:], axis=2)  # to every other marker
        assert gaps.min() > 0.05
        # the words sit in a box that covers no marker
        (words,) = [t for t in ax.texts if "slope at x=-1.5: 2x = -3.00" in t.get_text()]
        box = words.get_window_extent().transformed(ax.transAxes.inverted())
        assert not any(box.contains(*m) for m in markers)
        assert f"x -= {lr:g} * slope" in words.get_text()


def test_roller_coaster_is_deterministic_and_fits(tmp_path):
    fit = roller_coaster(seed=42)
    again = roller_coaster(seed=42)
    assert fit["losses"] == again["losses"] and fit["final_params"] == again["final_params"]
    assert roller_coaster(seed=1)["losses"] != fit["losses"]
    losses = fit["losses"]
    assert len(losses) == fit["steps"] + 1 == len(fit["params"])
    assert all(b <= a for a, b in itertools.pairwise(losses))
    assert losses[-1] < 0.05 * losses[0]  # the book's lr 1e-5 on raw t stalls at ~677 of ~1200
    assert losses[-1] < 2 * NOISE_STD**2  # about the noise: the curve follows the data
    # the reported loss is the MSE of the reported parameters, on standardised time
    a, b, c = fit["final_params"]
    u, speed = (fit["t"] - fit["t_mean"]) / fit["t_std"], fit["speed"]
    assert torch.allclose(u, fit["u"])
    assert losses[-1] == pytest.approx(float(((a * u**2 + b * u + c - speed) ** 2).mean()), rel=1e-5)
    # as good as the least-squares optimum of the same model, within 1%
    design = torch.stack([u**2, u, torch.ones_like(u)], 1)  # (20, 3)
    best = torch.linalg.lstsq(design, speed[:, None]).solution.squeeze(1)
    assert losses[-1] == pytest.approx(float((design @ best - speed).square().mean()), rel=0.01)


def test_plot_roller_coaster_draws_the_fit_and_says_lr_and_steps(tmp_path):
    fig = plot_roller_coaster(seed=3, steps=40, lr=0.1, path=tmp_path / "rc.png")
    assert_png(tmp_path / "rc.png", (800, 320))
    fit = fig.values
    assert fit["losses"] == roller_coaster(seed=3, steps=40, lr=0.1)["losses"]
    data_ax, loss_ax = fig.axes
    assert "lr 0.1" in data_ax.get_title() and "40 steps" in data_ax.get_title()
    final = data_ax.lines[-1]  # the curve of the last step, through the data
    assert final.get_label() == "step 40"
    residual = final.get_ydata() - fit["speed"].numpy()
    assert np.sqrt(np.mean(residual**2)) < 1.5 * NOISE_STD
    assert np.allclose(loss_ax.lines[0].get_ydata(), fit["losses"])
    assert loss_ax.lines[0].get_ydata()[-1] < 0.05 * loss_ax.lines[0].get_ydata()[0]
