"""Numbers through `digitlab serve`: /api/predict answers the number and each digit's box, label,
probability and 28x28; the page shows the string and the boxes over the photo (headless chromium)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

pytestmark = pytest.mark.slow  # drives a browser


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client(digit_cnn):
    from fastapi.testclient import TestClient

    from digitlab.web.app import create_app

    with TestClient(create_app(digit_cnn)) as test_client:
        yield test_client


def test_a_number_is_answered_digit_by_digit(client, clear_digits, number_picture):
    photo, truth = number_picture(["2026"], clear_digits)
    answer = client.post("/api/predict", content=_jpeg(photo))
    assert answer.status_code == 200
    body = answer.json()
    assert body["number"] == "2026" and "label" not in body  # several digits: no single label
    assert [d["label"] for d in body["digits"]] == list("2026")
    for digit, box in zip(body["digits"], truth):
        assert all(abs(a - b) <= 4 for a, b in zip(digit["box"], box)), (digit["box"], box)
        assert 0.5 < digit["probability"] <= 1 and digit["line"] == 0
        seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(digit["image_png_base64"]))))
        assert seen.shape == (28, 28) and seen.max() > 200 and seen[0, 0] == 0


def test_one_digit_keeps_its_answer_and_gains_its_box(client, clear_digits, number_picture):
    photo, (box,) = number_picture(["7"], clear_digits)
    body = client.post("/api/predict", content=_jpeg(photo)).json()
    assert body["label"] == "7" and body["number"] == "7" and body["top_k"][0][0] == "7"
    assert set(body) >= {"probabilities", "image_png_base64", "distances", "nearest_ideal"}
    (digit,) = body["digits"]
    assert digit["label"] == "7" and digit["probability"] == body["top_k"][0][1]
    assert all(abs(a - b) <= 4 for a, b in zip(digit["box"], box))


def _face(outline: bool) -> Image.Image:
    image = Image.new("L", (400, 400), 235)
    draw = ImageDraw.Draw(image)
    if outline:
        draw.ellipse((40, 40, 360, 360), outline=20, width=10)
    draw.ellipse((130, 130, 160, 170), fill=20)
    draw.ellipse((240, 130, 270, 170), fill=20)
    draw.arc((120, 180, 280, 300), 20, 160, fill=20, width=10)
    return image


def test_a_face_is_not_read_as_a_number(client):
    """Eyes and a mouth inside an outline are marks, not the digits of a number: read as one picture."""
    body = client.post("/api/predict", content=_jpeg(_face(outline=True))).json()
    assert "label" in body and len(body["digits"]) == 1  # one answer (a digit, or the model abstaining)
    assert all(abs(a - b) <= 3 for a, b in zip(body["digits"][0]["box"], [40, 40, 361, 361]))  # all the ink


def test_too_many_digits_and_a_strip_are_422_one_line(client):
    many = Image.new("L", (2000, 1000), 255)  # 200 short strokes
    pen = ImageDraw.Draw(many)
    for row in range(10):
        for col in range(20):
            pen.line([(50 + col * 95, 30 + row * 95), (75 + col * 95, 90 + row * 95)], fill=0, width=8)
    strip = io.BytesIO()
    Image.new("L", (10_000, 1), 255).save(strip, "PNG")
    for payload, words in ((_jpeg(many), "upload: 200 digits found (limit 64)"), (strip.getvalue(), "too thin")):
        answer = client.post("/api/predict", content=payload)
        assert answer.status_code == 422 and words in answer.json()["error"]
        assert "\n" not in answer.json()["error"]


def test_the_page_shows_the_number_and_its_boxes(
    digit_cnn, serve_model, clear_digits, number_picture, tmp_path, browser_page, page_complaints
):
    from playwright.sync_api import expect

    photo, truth = number_picture(["2026"], clear_digits)
    path = tmp_path / "year.jpg"
    photo.save(path, quality=92)
    with serve_model(digit_cnn) as url, browser_page() as page:
        complaints = page_complaints(page)
        page.goto(url)
        expect(page.locator("#model-info")).to_contain_text("cnn")
        page.set_input_files("#upload", str(path))
        expect(page.locator("#prediction")).to_have_text("2026", timeout=30_000)
        boxes = page.locator("#boxes .box")
        expect(boxes).to_have_count(4)
        shown = page.locator("#photo").bounding_box()
        scale = shown["width"] / photo.width  # the photo is drawn smaller than it is
        assert abs(shown["height"] / photo.height - scale) < 0.01
        for i, (x0, y0, x1, y1) in enumerate(truth):
            drawn = boxes.nth(i).bounding_box()
            assert boxes.nth(i).text_content() == "2026"[i]
            assert abs(drawn["x"] - (shown["x"] + x0 * scale)) < 4 and abs(drawn["y"] - (shown["y"] + y0 * scale)) < 4
            assert abs(drawn["width"] - (x1 - x0) * scale) < 5 and abs(drawn["height"] - (y1 - y0) * scale) < 5
        assert page.locator("#digits img").count() == 4 and page.locator("#bars .row").count() == 4
        assert page.locator("#seen").is_hidden()
        assert page.locator("#baseline").is_hidden()  # no one 28x28 to compare with the ideal digits
        # drawing on the pad again: the photo and its boxes go away
        page.click("#clear")
        expect(page.locator("#photo-frame")).to_be_hidden()
    assert complaints == []


def test_the_page_says_what_the_line_reader_reads(
    digit_cnn, serve_model, clear_digits, number_picture, tmp_path, browser_page, page_complaints
):
    """With `serve --lines`, the number says whether the line reader agrees, and a doubted digit shows ?."""
    import torch
    from playwright.sync_api import expect

    from digitlab.artifacts.line_files import save_line_reader
    from digitlab.line_reader import LineReader

    torch.manual_seed(0)
    save_line_reader(LineReader(), tmp_path / "lines", {"scores": {}})  # untrained: it reads nothing like 2026
    photo, _ = number_picture(["2026"], clear_digits)
    photo.save(tmp_path / "year.jpg", quality=92)
    with serve_model(digit_cnn, lines=tmp_path / "lines") as url, browser_page() as page:
        complaints = page_complaints(page)
        page.goto(url)
        page.set_input_files("#upload", str(tmp_path / "year.jpg"))
        expect(page.locator("#prediction")).to_contain_text("(the line reader reads", timeout=30_000)
        assert page.locator("#prediction").text_content().startswith("2026 ")
        captions = page.locator("#digits figcaption")
        expect(captions).to_have_count(4)
        assert all(captions.nth(i).text_content() == f"{'2026'[i]}?" for i in range(4))  # each doubted
        assert "not sure: the line reader reads" in (page.locator("#digits figure").first.get_attribute("title") or "")
    assert complaints == []
