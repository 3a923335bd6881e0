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


def _bars_as_mnist(root, n: int, seed: int) -> None:
    """MNIST-style training digits made by the same preprocessing the server uses: a "7" is a
    horizontal bar, a "3" a vertical one, of varying length, thickness and slant."""
    from digitlab.reading.preprocessing import to_mnist

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
        ("huge", 413, "the image is too large: 2.00 MB (limit 2 MB): send a smaller one"),
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
    for asset in ("app.js", "style.css", "favicon.svg", "favicon.ico"):  # the icon: no 404 in every log
        assert client.get(f"/{asset}").status_code == 200
    assert client.get("/favicon.ico").headers["content-type"] == "image/svg+xml"
    assert "http" not in page.text.replace("http-equiv", "").replace('xmlns="http://www.w3.org/2000/svg"', "")
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
def server(model_dir, serve_model):
    with serve_model(model_dir) as url:
        yield url


def test_drawing_on_the_page_shows_a_prediction(server, tmp_path, browser_page, page_complaints):
    from playwright.sync_api import expect

    outside: list[str] = []
    with browser_page() as page:
        local = (server, "data:", "blob:")
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(local) else None)
        complaints = page_complaints(page)
        page.goto(server)
        # locators, not wait_for_function: the page's CSP (rightly) forbids the eval that one uses
        expect(page.locator("#model-info")).to_contain_text("linear")
        box = page.locator("#pad").bounding_box()
        # a horizontal stroke across the middle: the fixtures' 7
        page.mouse.move(box["x"] + 40, box["y"] + 135)
        page.mouse.down()
        for step in range(1, 21):
            page.mouse.move(box["x"] + 40 + step * 10, box["y"] + 135, steps=2)
        page.mouse.up()
        expect(page.locator("#prediction")).not_to_have_text("?", timeout=10_000)
        assert page.locator("#prediction").text_content() == "7"
        assert page.locator("#bars .row").count() == 2
        assert page.locator("#seen").get_attribute("src").startswith("data:image/png;base64,")
        assert page.locator("#distances tr").count() == 2
        page.screenshot(path=str(tmp_path / "drawn.png"))
        # garbage uploaded through the button: an error on the page (the browser cannot decode it), not a crash
        garbage = tmp_path / "garbage.png"
        garbage.write_bytes(b"definitely not a picture")
        page.set_input_files("#upload", str(garbage))
        page.wait_for_selector("#error:not([hidden])", timeout=10_000)
        assert "not an image" in page.locator("#error").text_content()
        page.click("#clear")
        assert page.locator("#prediction").text_content() == "?"
    assert outside == []  # no CDN, no network beyond the server itself
    assert complaints == []  # nothing blocked by the page's Content-Security-Policy, no script error
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


# ---- The server holds up: security headers, HEAD, /docs offline, timeouts and limits ----


def test_every_answer_carries_security_headers(client):
    for path in ("/", "/app.js", "/docs", "/api/health", "/openapi.json"):
        headers = client.get(path).headers
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "no-referrer", path
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe" not in csp, path
    assert client.post("/api/predict", content=b"").headers["x-content-type-options"] == "nosniff"


def test_head_is_answered_without_a_body(server):
    import http.client
    from urllib.parse import urlsplit

    for path in ("/", "/app.js", "/docs"):
        connection = http.client.HTTPConnection(urlsplit(server).hostname, urlsplit(server).port, timeout=10)
        connection.request("HEAD", path)
        answer = connection.getresponse()
        assert answer.status == 200 and answer.read() == b"", path
        assert int(answer.getheader("content-length")) > 0  # what a GET would send
        connection.close()


def test_docs_are_served_from_the_package_and_work_offline(server, browser_page, page_complaints):
    from playwright.sync_api import expect

    outside: list[str] = []
    with browser_page() as page:
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(server) else None)
        complaints = page_complaints(page)
        page.goto(f"{server}/docs")
        expect(page.locator("#operations")).to_contain_text("POST /api/predict")
        expect(page.locator("#operations")).to_contain_text("GET /api/health")
        assert "413" in page.locator("#operations").text_content()
    assert outside == [] and complaints == []


def _address(server: str) -> tuple[str, int]:
    host, port = server.removeprefix("http://").split(":")
    return host, int(port)


def _connect(server: str, sent: bytes = b"") -> socket.socket:
    sock = socket.create_connection(_address(server), timeout=10)
    if sent:
        sock.sendall(sent)
    return sock


def _post(server: str, body: bytes, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    import http.client

    connection = http.client.HTTPConnection(*_address(server), timeout=timeout)
    try:
        connection.request("POST", "/api/predict", body=body, headers={"Content-Type": "image/png"})
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


def _stalled_upload(server: str) -> socket.socket:
    """Headers that promise 5,000 bytes of body, then 100 of them, then nothing."""
    head = b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 5000\r\n\r\n"
    return _connect(server, head + b"\x89PNG" + b"\0" * 96)


@pytest.fixture
def server_log():
    """What the server logs (uvicorn's logger, which digitlab's server uses too), as records."""
    import logging

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def _wait_for(condition, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_stalled_connections_do_not_block_another_clients_prediction(server):
    stalled = [_connect(server, b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Le") for _ in range(10)]
    stalled += [_stalled_upload(server) for _ in range(10)]
    stalled += [_connect(server) for _ in range(10)]  # connected, nothing sent
    try:
        started = time.monotonic()
        status, _, body = _post(server, _png(_drawn_bar(horizontal=True)))
        assert status == 200 and json.loads(body)["label"] == "7"
        assert time.monotonic() - started < 5
    finally:
        for sock in stalled:
            sock.close()


def test_a_large_photo_does_not_delay_a_small_drawing(server):
    """A ~15 MP upload is decoded in its own lane, off the event loop: the page's drawing overtakes it."""
    photo = Image.new("RGB", (3900, 3900), "white")
    ImageDraw.Draw(photo).rectangle((500, 1700, 3400, 2200), fill="black")
    large = _png(photo)
    finished: dict[str, float] = {}

    def send_large() -> None:
        assert _post(server, large)[0] == 200
        finished["large"] = time.monotonic()

    thread = threading.Thread(target=send_large)
    thread.start()
    time.sleep(0.15)
    status, _, _ = _post(server, _png(_drawn_bar(horizontal=False)))
    finished["small"] = time.monotonic()
    thread.join(60)
    assert status == 200 and finished["small"] < finished["large"]


def test_stalled_headers_are_dropped_with_one_log_line(server, server_log, monkeypatch):
    from digitlab.web import server as web_server

    monkeypatch.setattr(web_server, "HEADER_TIMEOUT_S", 0.3)
    sock = _connect(server, b"GET / HTTP/1.1\r\nHost: x\r\n")  # never the blank line that ends the headers
    try:
        assert sock.recv(100) == b""  # closed by the server, well before the socket's own 10 s timeout
    finally:
        sock.close()
    dropped = [r for r in server_log if "no complete request headers" in r.getMessage()]
    assert len(dropped) == 1 and dropped[0].exc_info is None


def test_an_upload_that_stalls_is_answered_408(server, monkeypatch):
    from digitlab.web import app as web_app

    monkeypatch.setattr(web_app, "BODY_TIMEOUT_S", 0.3)
    sock = _stalled_upload(server)
    try:
        answer = sock.recv(4096)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive within" in answer


def test_past_the_upload_bytes_limit_a_503_with_retry_after(server, server_log, monkeypatch):
    """A stalled upload holds the 100 bytes it sent: over the limit, the next upload is told to retry."""
    from digitlab.web import app as web_app

    drawing = _png(_drawn_bar(horizontal=True))
    monkeypatch.setattr(web_app, "MAX_BYTES_IN_FLIGHT", len(drawing) + 50)  # one drawing fits, not beside it
    sock = _stalled_upload(server)
    answers: list[tuple[int, dict[str, str], bytes]] = []
    try:
        assert _wait_for(lambda: answers.append(_post(server, drawing)) or answers[-1][0] == 503)
        _, headers, body = answers[-1]
        assert headers["retry-after"] == "1" and "busy" in json.loads(body)["error"]
    finally:
        sock.close()
    # the dropped upload frees what it held, and says so in one line
    assert _wait_for(lambda: _post(server, drawing)[0] == 200)
    dropped = [r for r in server_log if "disconnected during its upload" in r.getMessage()]
    assert len(dropped) == 1 and dropped[0].exc_info is None


def test_past_the_predictions_limit_a_503_with_retry_after(server, monkeypatch):
    from digitlab.web import app as web_app

    monkeypatch.setattr(web_app, "MAX_IN_FLIGHT", 1)
    photo = Image.new("RGB", (3900, 3900), "white")
    ImageDraw.Draw(photo).rectangle((500, 1700, 3400, 2200), fill="black")
    large, drawing = _png(photo), _png(_drawn_bar(horizontal=True))
    done = threading.Event()

    def hold_the_slot() -> None:  # large photos one after another until the drawing is refused
        deadline = time.monotonic() + 60
        while not done.is_set() and time.monotonic() < deadline:
            _post(server, large)

    busy = threading.Thread(target=hold_the_slot)
    busy.start()
    answers: list[tuple[int, dict[str, str], bytes]] = []
    try:
        assert _wait_for(lambda: answers.append(_post(server, drawing)) or answers[-1][0] == 503, seconds=50)
    finally:
        done.set()
        busy.join(60)
    _, headers, body = answers[-1]
    assert headers["retry-after"] == "1" and "1 predictions waiting" in json.loads(body)["error"]
    assert _post(server, drawing)[0] == 200


def test_past_the_connection_cap_a_503_with_retry_after(server, server_log, monkeypatch):
    from digitlab.web import server as web_server

    monkeypatch.setattr(web_server, "MAX_CONNECTIONS", 2)
    socks = [_connect(server) for _ in range(3)]
    try:
        answer = socks[-1].recv(4096)
    finally:
        for sock in socks:
            sock.close()
    assert answer.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in answer and b"busy" in answer
    assert any("over 2 open connections" in r.getMessage() for r in server_log)


def test_serve_says_serving_only_once_the_port_is_bound(model_dir, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["serve", str(model_dir), "--port", str(taken.getsockname()[1])]) == 2
    err = capsys.readouterr().err
    assert "already in use" in err and "serving" not in err and err.count("\n") == 1
