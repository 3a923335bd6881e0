"""The page says why the model abstains, and saves a correction when `serve --corrections DIR` allows it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from digitlab.data.corrections import load_corrections
from digitlab.data.styles import continental_sevens

pytestmark = pytest.mark.slow  # drives a browser


def _hash_sign(path) -> None:
    """A '#': one stroke shape, not a digit (the test CNN rejects it; it reads a smiley as a 0, a house as 0)."""
    image = Image.new("L", (300, 300), 255)
    draw = ImageDraw.Draw(image)
    for at in (110, 190):
        draw.line([(at, 40), (at, 260)], fill=0, width=12)
        draw.line([(40, at), (260, at)], fill=0, width=12)
    image.save(path)


def _seven_photo(seven: np.ndarray, path) -> None:
    """A continental 7 (bar and serif), dark on light paper, 10x the size: a photo of one digit."""
    ink = Image.fromarray(255 - continental_sevens(seven[None])[0].numpy()).resize((280, 280), Image.Resampling.BICUBIC)
    page = Image.new("L", (400, 360), 255)
    page.paste(ink, (60, 40))
    page.convert("RGB").save(path, "JPEG", quality=90)


def test_the_page_says_why_and_saves_a_correction(
    digit_cnn, clear_digits, tmp_path, serve_model, browser_page, page_complaints
):
    from playwright.sync_api import expect

    sign, seven = tmp_path / "hash.png", tmp_path / "seven.jpg"
    _hash_sign(sign)
    # a seven this CNN reads surely (the first of the holdout's was "not a digit" to the CNN trained
    # on another CPU: a 2-epoch model's borderline digits differ from machine to machine)
    _seven_photo(torch.from_numpy(clear_digits["7"]), seven)
    folder = tmp_path / "my-digits"
    with serve_model(digit_cnn, corrections=folder) as url, browser_page() as page:
        complaints = page_complaints(page)
        page.goto(url)
        expect(page.locator("#model-info")).to_contain_text("cnn")
        expect(page.locator("#correct")).to_be_hidden()  # nothing read yet
        page.set_input_files("#upload", str(sign))
        expect(page.locator("#prediction")).to_have_text("this does not look like a digit", timeout=15_000)
        expect(page.locator("#prediction")).to_have_class("prediction abstain")
        assert page.locator("#bars .row").count() == 3  # the likeliest classes are still shown
        page.set_input_files("#upload", str(seven))
        expect(page.locator("#prediction")).not_to_have_text("this does not look like a digit", timeout=15_000)
        expect(page.locator("#correct")).to_be_visible()
        assert page.locator("#correct-labels button").all_text_contents() == [str(d) for d in range(10)]
        page.locator("#keep-photo").check()
        page.locator("#correct-labels button", has_text="7").click()
        expect(page.locator("#corrected")).to_contain_text("saved as 7/", timeout=15_000)
        expect(page.locator("#corrected")).to_contain_text("1 of your 7s so far")
        assert complaints == []
    saved = load_corrections(folder)
    assert saved.classes == ("7",) and len(saved.train) == 1
    assert len(list((folder / "7").glob("*.photo.jpeg"))) == 1  # the photo as the page sent it (JPEG)

    with serve_model(digit_cnn) as url, browser_page() as page:  # without --corrections: no control
        page.goto(url)
        expect(page.locator("#model-info")).to_contain_text("cnn")
        page.set_input_files("#upload", str(seven))
        expect(page.locator("#prediction")).not_to_have_text("?", timeout=15_000)
        expect(page.locator("#correct")).to_be_hidden()
