"""show_image / show_images, crops by name, and the promise that the library never touches pyplot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from digitlab.errors import DigitlabError
from digitlab.plots import show_image, show_images
from digitlab.plots.common import DPI, DigitlabFigure, new_figure
from digitlab.plots.pixel_text import pixel_text, print_pixels
from digitlab.reading.crops import CROP_NAMES, describe_crop, resolve_crop

SRC = Path(__file__).resolve().parents[2] / "src" / "digitlab"


@pytest.fixture
def three() -> torch.Tensor:
    """A (28, 28) uint8 digit-like image: ink 255 in a block, paper 0 elsewhere."""
    image = torch.zeros(28, 28, dtype=torch.uint8)
    image[6:22, 9:19] = 255
    image[10:18, 12:16] = 0
    return image


# ---- crops -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, rows, cols",
    [
        ("top-left", (0, 14), (0, 14)),
        ("top-right", (0, 14), (14, 28)),
        ("bottom-left", (14, 28), (0, 14)),
        ("bottom-right", (14, 28), (14, 28)),
        ("centre", (7, 21), (7, 21)),
        ("center", (7, 21), (7, 21)),
        ("top", (0, 14), (0, 28)),
        ("bottom", (14, 28), (0, 28)),
        ("left", (0, 28), (0, 14)),
        ("right", (0, 28), (14, 28)),
        ("Top Left", (0, 14), (0, 14)),
        ("4:15,4:22", (4, 15), (4, 22)),
    ],
)
def test_crops_by_name_and_by_numbers(name, rows, cols):
    r, c = resolve_crop(name)
    assert (r.start, r.stop, c.start, c.stop) == (*rows, *cols)


def test_crop_forms_and_errors():
    assert resolve_crop(None) == resolve_crop("") == (slice(None), slice(None))
    pair = (slice(2, 5), slice(None))
    assert resolve_crop(pair) is pair
    assert resolve_crop("top-left", (10, 12)) == (slice(0, 5), slice(0, 6))  # halves of the image's own shape
    assert describe_crop("centre") == "centre: rows 7-20, columns 7-20"
    assert describe_crop("4:15,4:22") == "rows 4-14, columns 4-21" and describe_crop(None) == "the whole image"
    with pytest.raises(DigitlabError) as bad:
        resolve_crop("middle")
    assert all(name in str(bad.value) for name in CROP_NAMES) and "4:15,4:22" in str(bad.value)
    with pytest.raises(DigitlabError, match="no pixels"):
        resolve_crop("30:40,0:5")


def test_pixel_text_and_print_pixels_agree_on_a_named_crop(three, capsys):
    text = pixel_text(three, "bottom-right", title="corner")
    lines = text.splitlines()
    assert lines[0] == "corner" and lines[1].split() == [str(c) for c in range(14, 28)]
    assert lines[2].split()[0] == "14" and len(lines) == 2 + 14
    print_pixels(three, "bottom-right", "corner", color=False)
    assert capsys.readouterr().out == text + "\n"


# ---- show_image / show_images ------------------------------------------------------------


def test_show_image_scales_and_polarity(three, tmp_path):
    fig = show_image(three, title="a 3", path=tmp_path / "three.png")
    assert isinstance(fig, DigitlabFigure) and fig.axes[0].get_title() == "a 3"
    drawn = fig.axes[0].images[0]
    assert drawn.get_clim() == (0, 255) and drawn.get_cmap().name == "Greys"
    assert np.array_equal(drawn.get_array(), three.numpy())
    with Image.open(tmp_path / "three.png") as png:
        assert png.size == (3 * DPI, 3 * DPI)
        gray = np.asarray(png.convert("L"))
    assert gray[0, 0] > 240 and gray.min() < 30  # white paper, dark ink, as printed
    # floats in [0, 1] are drawn on 0..1, so a faint mean image stays faint; the same for (1, 28, 28)
    faint = show_image(three[None].float() / 255 * 0.3)
    assert faint.axes[0].images[0].get_clim() == (0, 1) and faint.values["image"].shape == (28, 28)
    # numpy, PIL and floats outside [0, 1] (normalised inputs: their own range)
    assert show_image(three.numpy()).values["vmax"] == 255
    assert show_image(Image.fromarray(three.numpy())).values["vmax"] == 255
    assert show_image(three.float() - 100).values["vmin"] == -100
    with pytest.raises(DigitlabError):
        show_image(torch.zeros(2, 28, 28))


def test_show_image_crop_figsize_and_callers_axes(three):
    cropped = show_image(three, crop="top-left", figsize=(2, 2))
    assert np.array_equal(cropped.values["image"], three[:14, :14].numpy())
    assert tuple(cropped.get_size_inches()) == (2, 2)
    host, axes = new_figure(1, 2)
    assert show_image(three, ax=axes[0, 1], title="right") is host  # the caller's figure, drawn on its axes
    assert axes[0, 1].get_title() == "right" and not axes[0, 0].images
    assert host.values == {}  # the caller's figure keeps its own values


def test_show_images_grid(three, tmp_path):
    fig = show_images([three, three.float() / 255, three[None]], titles=["a", "b", "c"], path=tmp_path / "row.png")
    assert (fig.values["nrows"], fig.values["ncols"]) == (1, 3) and fig.values["vmax"] == [255, 1, 255]
    assert [ax.get_title() for ax in fig.axes] == ["a", "b", "c"]
    with Image.open(tmp_path / "row.png") as png:
        assert png.size == (round(3 * 1.6 * DPI), round(1.8 * DPI))
    grid = show_images(torch.stack([three] * 5), nrows=2)  # a stacked (N, 28, 28) tensor
    assert (grid.values["nrows"], grid.values["ncols"]) == (2, 3)
    assert sum(ax.get_visible() for ax in grid.axes) == 5
    assert show_images([three] * 5, ncols=2).values["nrows"] == 3
    with pytest.raises(DigitlabError):
        show_images([three, three], titles=["one"])


# ---- no pyplot, no backend ---------------------------------------------------------------


def test_the_library_never_uses_pyplot_or_sets_a_backend():
    # all.py is the notebook's star import: it hands the book its `plt`, as fastai's does (a user's line)
    offenders = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if p.name != "all.py"
        and re.search(
            r"matplotlib\.use\(|import matplotlib\.pyplot|from matplotlib import pyplot|"
            r"\bplt\.|pyplot\.\w+\(",
            p.read_text(),
        )
    ]
    assert offenders == []


def test_drawing_every_figure_leaves_matplotlib_alone(tmp_path):
    """In a fresh interpreter: a backend chosen by the user stays chosen, and pyplot is never imported."""
    script = f"""
import sys, matplotlib, torch
matplotlib.use("svg")
from digitlab.plots import *
t = torch.zeros(28, 28, dtype=torch.uint8); t[5:20, 8:12] = 255
figs = [show_image(t), show_images([t, t]), plot_activations(), plot_sgd_quadratic(), plot_roller_coaster(),
        plot_pixel_table(t, "centre"), plot_ideal_digits(torch.rand(2, 28, 28), ("3", "7")),
        plot_loss_curves([{{"train_loss": 1.0, "valid_loss": 0.9}}]), plot_lr_schedule([0.1, 0.2]),
        plot_recorder_loss([torch.tensor(1.0)] * 4, [{{"valid_loss": 0.5}}] * 2)]
plot_pixel_table(t, path={str(tmp_path / "p.png")!r})
assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
assert "matplotlib.pyplot" not in sys.modules and "IPython" not in sys.modules
print(len(figs))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "10" and (tmp_path / "p.png").exists()
