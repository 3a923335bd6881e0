"""Blank is blank: a photographed page with no ink (shadows, ruled lines, a grid, paper texture) is
"no digit found", read as one digit or as a number; noise says it is noise; ink on such a page is
still found."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitlab.errors import DataError
from digitlab.reading.preprocessing import to_mnist
from digitlab.reading.segment import find_digits

H, W = 600, 800


def photographed(page: np.ndarray) -> Image.Image:
    """(H, W) float levels -> the JPEG a phone would save (quality 80)."""
    buffer = io.BytesIO()
    Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)).convert("RGB").save(buffer, "JPEG", quality=80)
    return Image.open(io.BytesIO(buffer.getvalue()))


def paper(kind: str, seed: int = 0) -> np.ndarray:
    """A page lit unevenly from one side, with sensor noise, and one of: a hand's shadow, a hard
    shadow edge, ruled lines with a margin, a grid, paper texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    page = 200 + 40 * (xx / W) - 30 * (yy / H)  # 170..240
    if kind == "shadow":
        page -= 90 * np.exp(-((xx - 150) ** 2 + (yy - 450) ** 2) / (2 * 180**2))
    elif kind == "shadow_edge":
        page[:, :200] -= 70 * (1 - xx[:, :200] / 200) ** 0.5
    elif kind == "lined":
        for y in range(60, H, 32):
            page[y : y + 2] -= 60
        page[:, 90:92] -= 50
    elif kind == "grid":
        for y in range(0, H, 24):
            page[y] -= 45
        for x in range(0, W, 24):
            page[:, x] -= 45
    elif kind == "texture":
        fibres = rng.normal(0, 1, (H // 4, W // 4)) * 40 + 128
        page += np.asarray(Image.fromarray(fibres.clip(0, 255).astype(np.uint8)).resize((W, H)), float) / 8 - 16
    return page + rng.normal(0, 5, (H, W))


PAGES = ["plain", "shadow", "shadow_edge", "lined", "grid", "texture"]


@pytest.mark.parametrize("kind", PAGES)
@pytest.mark.parametrize("seed", [0, 1])
def test_a_page_without_ink_is_blank_as_a_digit_and_as_a_number(kind, seed):
    picture = photographed(paper(kind, seed))
    with pytest.raises(DataError, match="no digit found"):
        to_mnist(picture)
    with pytest.raises(DataError, match="no digit found"):
        find_digits(picture)


@pytest.mark.parametrize("noise", ["uniform", "gaussian"])
def test_noise_is_called_noise(noise):
    rng = np.random.default_rng(0)
    page = rng.uniform(0, 255, (H, W)) if noise == "uniform" else 128 + rng.normal(0, 50, (H, W))
    for read in (to_mnist, find_digits):
        with pytest.raises(DataError, match="noise"):
            read(photographed(page))


def written(page: np.ndarray, number: str) -> Image.Image:
    """Digits drawn with a 9-pixel pen at 70% darkness on the page, 120 px high, spaced."""
    picture = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8))
    pen = ImageDraw.Draw(picture)
    strokes = {  # a digit as strokes in a 60x120 box
        "1": [[(30, 0), (30, 120)]],
        "7": [[(0, 0), (60, 0), (20, 120)]],
        "4": [[(45, 120), (45, 0), (0, 80), (60, 80)]],
    }
    for i, digit in enumerate(number):
        for line in strokes[digit]:
            left, top = 250 + 110 * i, 240
            points = [(left + x, top + y) for x, y in line]
            level = int(np.median(page[top : top + 120, left : left + 60]) * 0.3)
            pen.line(points, fill=level, width=9)
    return photographed(np.asarray(picture, float))


@pytest.mark.parametrize("kind", ["plain", "shadow", "texture"])
def test_ink_on_such_a_page_is_still_found(kind):
    digits = find_digits(written(paper(kind), "174"))
    assert len(digits) == 3 and [d.box[0] for d in digits] == sorted(d.box[0] for d in digits)
    assert to_mnist(written(paper(kind), "7")).float().mean() > 10


@pytest.mark.parametrize("kind", ["lined", "grid"])
def test_digits_across_ruled_lines_or_a_grid_are_found_as_on_plain_paper(kind):
    """The lines go, the strokes that cross them stay whole: the same three digits in the same boxes
    (within a few pixels) as on plain paper, and much the same 28x28 pictures."""
    plain, ruled = find_digits(written(paper("plain"), "174")), find_digits(written(paper(kind), "174"))
    assert len(ruled) == len(plain) == 3
    for a, b in zip(plain, ruled):
        assert max(abs(p - q) for p, q in zip(a.box, b.box)) <= 3, (a.box, b.box)
        assert (a.image.float() - b.image.float()).abs().mean() < 10  # levels of 255, a mean over 28x28
    assert to_mnist(written(paper(kind), "7")).float().mean() > 10


def test_a_tilted_ruled_page_without_ink_is_blank():
    """Ruled lines photographed at a slant (2 degrees) are still lines, not digits."""
    yy, xx = np.mgrid[0:H, 0:W]
    page = 200 + 40 * (xx / W) - 30 * (yy / H)
    page[((yy - xx * np.tan(np.radians(2)) - 20) % 32) < 2] -= 60
    picture = photographed(page + np.random.default_rng(0).normal(0, 5, (H, W)))
    with pytest.raises(DataError, match="no digit found"):
        find_digits(picture)
