"""`predict --show`'s figure: each input as a thumbnail next to the 28x28 the model read."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from digitlab.errors import DigitlabError
from digitlab.plots.predictions import THUMBNAIL, plot_predictions, thumbnail
from digitlab.reading.preprocessing import stretch_to_8bit, to_mnist


def test_a_16_bit_image_is_stretched_as_to_mnist_reads_it():
    values = np.linspace(1000, 3000, 400 * 300, dtype=np.uint16).reshape(300, 400)  # dim, in a 16-bit range
    deep = Image.fromarray(values)  # mode I;16
    assert deep.mode == "I;16"
    small = thumbnail(deep)
    assert small.mode == "RGBA" and max(small.size) == THUMBNAIL
    gray = np.asarray(small.convert("L"))
    assert gray.min() <= 1 and gray.max() >= 254  # the full range, not a clipped white or black
    stretched = stretch_to_8bit(deep)
    assert stretched.dtype == np.float32 and stretched.min() == 0 and stretched.max() == pytest.approx(255)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "1"])
def test_ordinary_images_become_rgba_thumbnails(mode):
    image = Image.new("RGB", (500, 250), "white").convert(mode)
    small = thumbnail(image)
    assert small.mode == "RGBA" and small.size == (THUMBNAIL, THUMBNAIL // 2)


def test_plot_predictions_draws_a_row_per_image(tmp_path):
    image = Image.new("L", (120, 140), 255)
    image.paste(0, (50, 20, 70, 120))
    digit = to_mnist(image)
    fig = plot_predictions(
        [thumbnail(image)] * 2,
        [digit, digit],
        ["a/b/one.png", "two.png"],
        ["3", "7"],
        [0.25, 0.999999],
        path=tmp_path / "show.png",
    )
    assert fig.values["titles"] == ["the model saw this: 3 (25%)", "the model saw this: 7 (100%)"]
    with Image.open(tmp_path / "show.png") as png:
        assert png.size == (500, 460)  # 2 columns of 2.5 in, 2 rows of 2.3 in, at 100 dpi
    assert fig.axes[0].get_title() == "one.png"
    with pytest.raises(DigitlabError):
        plot_predictions([], [], [], [], [])
    assert torch.equal(torch.as_tensor(fig.axes[1].images[0].get_array()), digit)
