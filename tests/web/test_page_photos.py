"""The page with a real phone photo: decoded in the browser (EXIF orientation honoured), scaled to at
most 1600 px and sent under the server's limit; formats the browser cannot read get a message; a
finger drawing on the pad does not scroll the page. Headless chromium, a ten-digit CNN."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from digitlab.web.app import MAX_BODY

pytestmark = pytest.mark.slow  # drives a browser

PHOTO = (4000, 3000)  # a 12 MP phone photo, landscape


def phone_photo(digit: np.ndarray, seed: int = 0) -> Image.Image:
    """(28, 28) uint8 MNIST digit -> a 4000x3000 RGB 'photo': blue-black ink ~1900 px tall on unevenly lit
    paper, with sensor noise (sigma 11 per channel) so that it does not compress small."""
    rng = np.random.default_rng(seed)
    w, h = PHOTO
    side = 2000
    ink = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC), np.float32) / 255
    xx = np.linspace(0, 1, w, dtype=np.float32)
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    light = 200 + 30 * xx - 25 * yy  # (h, w): brighter on the right, darker at the bottom
    cover = np.zeros((h, w), np.float32)
    cover[(h - side) // 2 : (h + side) // 2, (w - side) // 2 : (w + side) // 2] = np.clip(ink, 0, 1)
    paper, pen = np.array([1.0, 0.98, 0.93], np.float32), np.array([0.2, 0.22, 0.4], np.float32)
    rgb = light[..., None] * (paper + cover[..., None] * (pen - paper))
    rgb += rng.normal(0, 11, rgb.shape).astype(np.float32)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def save_jpeg(image: Image.Image, path, orientation: int | None = None) -> None:
    """As a phone saves it; orientation 6: the pixels stored turned 90 degrees counter-clockwise,
    with the EXIF tag that tells viewers to turn them back clockwise."""
    exif = Image.Exif()
    if orientation == 6:
        image = image.transpose(Image.Transpose.ROTATE_90)
        exif[0x0112] = 6
    image.save(path, "JPEG", quality=92, exif=exif.tobytes())


@pytest.fixture(scope="module")
def confident_digit(offline_mnist, digit_cnn):
    """A holdout 2 the model reads right and surely as a clean 28x28 (the photo's digit)."""
    from digitlab.predict.predictor import Predictor

    dataset, _ = offline_mnist
    twos = dataset.valid.images[dataset.valid.labels == dataset.valid.classes.index("2")][:50]
    found = Predictor.load(digit_cnn).predict(twos)
    best = int(found.probabilities[:, 2].argmax())
    assert found.labels[best] == "2" and found.probabilities[best, 2] > 0.95
    return twos[best].numpy()


@pytest.fixture(scope="module")
def page_server(digit_cnn, serve_model):
    with serve_model(digit_cnn) as url:
        yield url


@pytest.fixture
def received(monkeypatch) -> list[bytes]:
    """The bodies the server reads, as they arrive (playwright does not show a request's blob body)."""
    from digitlab.web.app import UploadReader

    bodies: list[bytes] = []
    read = UploadReader.read

    def recording(self, data: bytes):
        bodies.append(data)
        return read(self, data)

    monkeypatch.setattr(UploadReader, "read", recording)
    return bodies


def test_a_phone_photo_and_a_sideways_one_are_read_on_the_page(
    page_server, confident_digit, tmp_path, browser_page, page_complaints, received
):
    from playwright.sync_api import expect

    photo = phone_photo(confident_digit)
    upright, sideways = tmp_path / "upright.jpg", tmp_path / "sideways.jpg"
    save_jpeg(photo, upright)
    save_jpeg(photo, sideways, orientation=6)
    for path in (upright, sideways):
        assert path.stat().st_size > 1.5 * MAX_BODY  # several MB: the server alone would refuse it
    with Image.open(sideways) as stored:
        assert stored.size == (3000, 4000)  # portrait pixels, shown landscape by the EXIF tag
    with browser_page() as page:
        complaints = page_complaints(page)
        page.goto(page_server)
        expect(page.locator("#model-info")).to_contain_text("cnn")
        for path in (upright, sideways):
            page.click("#clear")
            page.set_input_files("#upload", str(path))
            expect(page.locator("#prediction")).not_to_have_text("?", timeout=30_000)
            assert page.locator("#prediction").text_content() == "2", path.name
            assert page.locator("#error").is_hidden()
    assert len(received) == 2 and complaints == []
    for body in received:
        assert len(body) < MAX_BODY
        with Image.open(io.BytesIO(body)) as image:
            # upright and 1600 px on the longest side: the sideways photo was turned by its EXIF tag
            assert image.size == (1600, 1200) and image.format == "JPEG"
            assert image.getexif().get(0x0112) in (None, 1)  # nothing left for the server to turn again


def test_a_heic_photo_gets_a_message_and_no_upload(page_server, tmp_path, browser_page, page_complaints, received):
    from playwright.sync_api import expect

    heic = tmp_path / "IMG_0042.HEIC"
    heic.write_bytes(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(4000))  # a HEIC header chromium cannot decode
    with browser_page() as page:
        complaints = page_complaints(page)
        page.goto(page_server)
        expect(page.locator("#model-info")).to_contain_text("cnn")
        page.set_input_files("#upload", str(heic))
        expect(page.locator("#error")).to_be_visible(timeout=10_000)
        message = page.locator("#error").text_content()
        assert page.locator("#prediction").text_content() == "?"
    assert "IMG_0042.HEIC: this browser cannot read this format (HEIC?)" in message and "JPEG" in message
    assert received == [] and complaints == []


def test_a_finger_drawing_on_the_pad_does_not_scroll_the_page(page_server, browser_page):
    """Touch drags sent as the touchscreen sends them (CDP): on the pad they draw and the page stays put;
    the same drag on the page's text scrolls it (so the check can tell)."""
    from playwright.sync_api import expect

    with browser_page(viewport={"width": 360, "height": 480}, has_touch=True, is_mobile=True) as page:
        page.goto(page_server)
        expect(page.locator("#model-info")).to_contain_text("cnn")
        cdp = page.context.new_cdp_session(page)

        def drag(x: float, y0: float, y1: float) -> None:
            cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y0}]})
            for i in range(1, 16):
                y = y0 + (y1 - y0) * i / 15
                cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
            cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})

        pad = page.locator("#pad").bounding_box()
        drag(pad["x"] + pad["width"] / 2, pad["y"] + pad["height"] - 30, pad["y"] + 30)  # upward: would scroll down
        page.wait_for_timeout(500)
        assert page.locator("#pad").bounding_box()["y"] == pad["y"]  # not scrolled
        expect(page.locator("#prediction")).not_to_have_text("?", timeout=10_000)  # it drew a stroke
        beside = pad["x"] + pad["width"] + 20  # the page's margin, right of the pad
        assert beside < 350
        drag(beside, pad["y"] + pad["height"] - 30, pad["y"] + 30)  # the same drag beside the pad
        page.wait_for_timeout(500)
        assert page.locator("#pad").bounding_box()["y"] < pad["y"]  # scrolled


def test_a_photo_replaces_the_drawing_and_nothing_seen_shows_no_broken_image(
    page_server, confident_digit, tmp_path, browser_page, page_complaints, received
):
    from playwright.sync_api import expect

    path = tmp_path / "upright.jpg"
    save_jpeg(phone_photo(confident_digit), path)
    ink = "() => { const d = document.getElementById('pad').getContext('2d').getImageData(0, 0, 280, 280).data;"
    ink += " let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128) n++; return n; }"
    with browser_page() as page:
        complaints = page_complaints(page)
        page.goto(page_server)
        expect(page.locator("#model-info")).to_contain_text("cnn")
        assert page.locator("#seen").is_hidden()  # first load: no 28x28 yet, so no broken-image icon
        box = page.locator("#pad").bounding_box()
        page.mouse.move(box["x"] + 60, box["y"] + 60)
        page.mouse.down()
        page.mouse.move(box["x"] + 200, box["y"] + 200, steps=10)
        page.mouse.up()
        assert page.evaluate(ink) > 0  # a drawing on the pad
        page.set_input_files("#upload", str(path))
        expect(page.locator("#prediction")).to_have_text("2", timeout=30_000)
        assert page.evaluate(ink) == 0  # the photo's answer is not shown beside an old drawing
    assert complaints == []


def test_on_a_laptop_screen_the_answer_is_beside_the_pad(page_server, browser_page):
    with browser_page() as page:
        page.set_viewport_size({"width": 1100, "height": 800})
        page.goto(page_server)
        pad, answer = page.locator("#pad").bounding_box(), page.locator("#prediction").bounding_box()
        assert answer["x"] >= pad["x"] + pad["width"] and answer["y"] + answer["height"] < 800  # beside, above the fold
        page.set_viewport_size({"width": 400, "height": 800})  # a phone: one column, the answer under the pad
        pad, answer = page.locator("#pad").bounding_box(), page.locator("#prediction").bounding_box()
        assert answer["y"] >= pad["y"] + pad["height"]
