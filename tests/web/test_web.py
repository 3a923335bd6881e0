"""`digitlab serve`: the JSON API's answers and limits, and the page driven in headless chromium."""

from __future__ import annotations

import base64
import io
import json
import math
import socket
import threading
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitlab.cli import main

CHROMIUM = "/usr/bin/chromium"


def _bars_as_mnist(root, n: int, seed: int) -> None:
    """MNIST-style training digits made by the same preprocessing the server uses: a "7" is a
    horizontal bar, a "3" a vertical one, of varying length, thickness and slant."""
    from digitlab.preprocessing import to_mnist

    rng = np.random.default_rng(seed)
    for label, horizontal in (("7", True), ("3", False)):
        folder = root / label
        folder.mkdir(parents=True)
        for i in range(n):
            image = Image.new("L", (280, 280), 255)
            length, width, slant = rng.integers(120, 220), rng.integers(25, 60), rng.integers(-30, 30)
            a, b = (140 - length // 2, 140 + length // 2)
            line = [(a, 140 - slant), (b, 140 + slant)] if horizontal else [(140 - slant, a), (140 + slant, b)]
            ImageDraw.Draw(image).line(line, fill=0, width=int(width))
            Image.fromarray(to_mnist(image).numpy()).save(folder / f"{i}.png")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, train_cli):
    root = tmp_path_factory.mktemp("web")
    _bars_as_mnist(root / "sample" / "train", 20, seed=0)
    _bars_as_mnist(root / "sample" / "valid", 6, seed=1)
    out = root / "run"
    train_cli(root / "sample", out, "--model", "linear", "--epochs", "5")
    return out


@pytest.fixture(scope="module")
def client(model_dir):
    from fastapi.testclient import TestClient

    from digitlab.web.app import create_app

    with TestClient(create_app(model_dir)) as test_client:
        yield test_client


def _png(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _drawn_bar(horizontal: bool) -> Image.Image:
    """Black on white, like the canvas: a horizontal bar reads as the fixtures' 7, a vertical one as 3."""
    image = Image.new("RGB", (280, 280), "white")
    box = (40, 110, 240, 160) if horizontal else (110, 40, 160, 240)
    ImageDraw.Draw(image).rectangle(box, fill="black")
    return image


def test_health(client):
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["classes"] == ["3", "7"] and health["model"] == "linear"


def test_predict_returns_label_probabilities_image_and_distances(client):
    answer = client.post("/api/predict", content=_png(_drawn_bar(horizontal=True)))
    assert answer.status_code == 200
    body = answer.json()
    assert body["label"] == "7" and body["top_k"][0][0] == "7"
    assert abs(sum(body["probabilities"].values()) - 1) < 1e-5
    # one rounding rule with `digitlab predict`: down to 6 decimals, so the shown probabilities never exceed 1
    assert sum(body["probabilities"].values()) <= 1
    assert all(p == math.floor(p * 1e6) / 1e6 for p in body["probabilities"].values())
    assert [p for _, p in body["top_k"]] == sorted(body["probabilities"].values(), reverse=True)
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["image_png_base64"]))))
    assert seen.shape == (28, 28) and seen.max() > 200 and seen[0, 0] == 0  # MNIST polarity
    assert set(body["distances"]) == {"3", "7"} and body["nearest_ideal"] == "7"
    vertical = client.post("/api/predict", content=_png(_drawn_bar(horizontal=False), "JPEG")).json()
    assert vertical["label"] == "3"


@pytest.mark.parametrize(
    "payload, status, words",
    [
        (b"", 400, "empty"),
        (b"this is not an image", 415, "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 50, 415, "not an image"),
        ("tiff", 415, "TIFF"),
        ("blank", 422, "no digit found"),
        ("huge", 413, "too large"),
        ("bomb", 413, "too large"),
    ],
)
def test_bad_uploads_are_4xx_json(client, payload, status, words):
    if payload == "tiff":
        payload = _png(_drawn_bar(True), "TIFF")
    elif payload == "blank":
        payload = _png(Image.new("L", (100, 100), 255))
    elif payload == "huge":
        payload = b"\0" * (2 * 1024 * 1024 + 1)
    elif payload == "bomb":  # a small file whose header claims 20,000 x 20,000 pixels
        payload = _png(Image.new("1", (20_000, 20_000)))
        assert len(payload) < 2 * 1024 * 1024
    answer = client.post("/api/predict", content=payload)
    assert answer.status_code == status
    assert words in answer.json()["error"]


def test_page_and_docs_are_served_without_a_cdn(client):
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    for asset in ("app.js", "style.css"):
        assert client.get(f"/{asset}").status_code == 200
    assert "http" not in page.text.replace("http-equiv", "")
    assert client.get("/openapi.json").json()["paths"]["/api/predict"]


def test_assets_cannot_be_swapped_by_a_query_parameter(client, tmp_path):
    """An asset's route takes no parameters: ?name=../../x.css must not serve a file outside the package."""
    import os

    import digitlab.web

    secret = tmp_path / "secret.css"
    secret.write_text("not for the web")
    static = os.path.join(os.path.dirname(digitlab.web.__file__), "static")
    answer = client.get("/style.css", params={"name": os.path.relpath(secret, static)})
    assert answer.status_code == 200 and "not for the web" not in answer.text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(model_dir):
    import uvicorn

    from digitlab.web.app import create_app

    port = _free_port()
    config = uvicorn.Config(create_app(model_dir), host="127.0.0.1", port=port, log_level="warning")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uv.started
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(10)


def test_drawing_on_the_page_shows_a_prediction(server, tmp_path):
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((server, "data:")) else None)
            page.goto(server)
            page.wait_for_function("document.getElementById('model-info').textContent.includes('linear')")
            box = page.locator("#pad").bounding_box()
            # a horizontal stroke across the middle: the fixtures' 7
            page.mouse.move(box["x"] + 40, box["y"] + 135)
            page.mouse.down()
            for step in range(1, 21):
                page.mouse.move(box["x"] + 40 + step * 10, box["y"] + 135, steps=2)
            page.mouse.up()
            page.wait_for_function("document.getElementById('prediction').textContent !== '?'", timeout=10_000)
            assert page.locator("#prediction").text_content() == "7"
            assert page.locator("#bars .row").count() == 2
            assert page.locator("#seen").get_attribute("src").startswith("data:image/png;base64,")
            assert page.locator("#distances tr").count() == 2
            page.screenshot(path=str(tmp_path / "drawn.png"))
            # garbage uploaded through the button: an error on the page, not a crash
            garbage = tmp_path / "garbage.png"
            garbage.write_bytes(b"definitely not a picture")
            page.set_input_files("#upload", str(garbage))
            page.wait_for_selector("#error:not([hidden])", timeout=10_000)
            assert "not an image" in page.locator("#error").text_content()
            page.click("#clear")
            assert page.locator("#prediction").text_content() == "?"
        finally:
            browser.close()
    assert outside == []  # no CDN, no network beyond the server itself
    screenshot = np.asarray(Image.open(tmp_path / "drawn.png").convert("L"), dtype=float)
    assert screenshot.std() > 10


def test_serve_refuses_a_bad_model(capsys, tmp_path):
    assert main(["serve", str(tmp_path)]) == 2
    assert "not a digitlab model" in capsys.readouterr().err


def test_serve_and_predict_answer_alike(client, model_dir, tmp_path, capsys):
    """The same image through the page's API and `digitlab predict`: the same label and top k, to the digit."""
    image = tmp_path / "bar.png"
    _drawn_bar(horizontal=True).save(image)
    served = client.post("/api/predict", content=image.read_bytes()).json()
    assert main(["predict", str(model_dir), str(image), "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)["predictions"][0]
    assert predicted["label"] == served["label"] and predicted["top_k"] == served["top_k"]
