"""`create_app(model_dir)`: a FastAPI app serving the draw-a-digit page and a JSON API.

POST /api/predict  body: the image bytes (PNG, JPEG, WebP, BMP or GIF, <= 2 MB, <= 16 MP)
                   -> label (null where the model abstains, with the reason: "not sure: 4 or 9?"),
                      probabilities, top 3 (rounded down to 6 decimals, as `digitlab predict`),
                      the 28x28 the model saw (PNG, base64),
                      the distance of that 28x28 to each ideal digit (the chapter's baseline),
                      and number (the label) and digits (one: its box, label, probability);
                   several digits -> only number ("2026") and digits (each: box, line, label,
                      probability, image_png_base64), as `digitlab predict --number`; marks that
                      do not read as a number (a face) are read as one picture, as `digitlab predict`
POST /api/correct?label=7&keep_photo=false  body: the same image bytes (only with `serve --corrections DIR`)
                   -> saves the 28x28 the model saw as DIR/7/<id>.png (the photo beside it if keep_photo)
GET  /api/health   -> status, model, classes, accuracy, max_upload_bytes, corrections (is /api/correct on)
GET  /docs         -> the API's documentation (a page of the package that reads /openapi.json)
Every bad input is a 4xx JSON {"error": message}; the page and its scripts are served from
the package, so it works offline. One code path with the CLI: preprocessing.to_mnist, then
run.predictor.Predictor.

Limits: an upload must arrive within BODY_TIMEOUT_S (408); per process, at most
MAX_BYTES_IN_FLIGHT bytes of uploads are held, MAX_IN_FLIGHT predictions wait or run, and
MAX_LARGE_IN_FLIGHT of them large (over LARGE_PIXELS): past any, a 503 with Retry-After. A slow
upload holds only the bytes it has sent, so stalled clients cannot crowd out predictions.
Predictions run in two one-thread pools off the event loop, one for large images and one for
the rest, so a 16 MP photo neither stalls the event loop nor delays the page's small drawings.
Every answer carries security headers (a Content-Security-Policy that allows the page's own
files only). Connection-level limits (header deadline, keep-alive, connection cap): server.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..baseline import mnist_distance
from ..data.corrections import check_label, save_correction
from ..errors import DigitlabError
from ..preprocessing import load_image, to_mnist
from ..run.numbers import read_number
from ..run.predictor import Predictor
from ..run.serialization import load_ideal_digits

MAX_BODY = 2 * 1024 * 1024  # bytes of an upload (the page scales photos down to ~1 MB before sending)
MAX_PIXELS = 16_000_000  # decoded image size: a phone photo fits, a decompression bomb does not
LARGE_PIXELS = 1_000_000  # images over this take the large lane (the page sends 112 x 112)
MAX_IN_FLIGHT = 256  # predictions waiting or running per process (a drawing takes ~5 ms)
MAX_BYTES_IN_FLIGHT = 64 * 1024 * 1024  # upload bytes held per process (received, not yet answered)
MAX_LARGE_IN_FLIGHT = 4  # of which large images, waiting or running
BODY_TIMEOUT_S = 15.0  # the whole upload must arrive by then
RETRY_AFTER_S = 1
FORMATS = {"PNG", "JPEG", "WEBP", "BMP", "GIF"}
TOP_K = 3  # the likeliest classes an answer lists
STATIC = ("index.html", "app.js", "style.css", "docs.html", "docs.js")
MEDIA = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# The page's own files only: no inline script or style, no other origin; images also from data:
# URLs (the 28x28 the model saw) and blob: URLs (an uploaded photo, decoded through an <img> where
# createImageBitmap cannot). Sent with every answer (JSON included), with the other headers.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]

log = logging.getLogger("uvicorn.error")  # uvicorn's logger: one line, its format and level


class BadInput(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers


SMALLER = ": send a smaller one (the page scales photos down before sending)"


def _mb(n: int) -> str:
    """Bytes in MB (2**20), as people read a limit: "2 MB", "4.5 MB"."""
    return f"{n / 2**20:.1f} MB".replace(".0 MB", " MB")


def _png_base64(image: torch.Tensor) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image.numpy()).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


class UploadReader:
    """An upload's bytes -> the model's answer, with the ideal digits beside it; safe from many threads."""

    def __init__(self, predictor: Predictor, ideals: torch.Tensor | None) -> None:
        self.predictor, self.ideals = predictor, ideals
        # The model one batch at a time (a few ms); decoding and preprocessing, the slow part
        # for a large photo, run side by side in the two lanes.
        self.lock = threading.Lock()

    def check(self, data: bytes) -> int:
        """The image's pixel count from its header (cheap: nothing decoded); BadInput if not an accepted image."""
        if not data:
            raise BadInput(400, "empty body: send the image's bytes")
        try:
            with Image.open(io.BytesIO(data)) as probe:
                kind, (width, height) = probe.format, probe.size
        except Image.DecompressionBombError as e:
            raise BadInput(413, f"the image is too large to decode ({e})") from None
        except Exception:
            raise BadInput(415, "not an image: send PNG, JPEG, WebP, BMP or GIF bytes") from None
        if kind not in FORMATS:
            raise BadInput(415, f"{kind} images are not accepted: send PNG, JPEG, WebP, BMP or GIF")
        return int(width * height)

    def predict(self, data: bytes) -> dict[str, Any]:
        self.check(data)
        return self.read(data)

    def correct(self, data: bytes, label: str, folder: Path, keep_photo: bool) -> dict[str, Any]:
        """Save the 28x28 the model saw in an upload that passed check() as a correction (`data.corrections`)."""
        try:
            with Image.open(io.BytesIO(data)) as probe:
                kind = probe.format or ""
            image = load_image(io.BytesIO(data), MAX_PIXELS, name="upload")
            reading = read_number(self.predictor, image, source="upload", guard=self.lock, cut_lone=False)
            if reading.looks_like_a_number:  # as /api/predict reads it: a number, whose digits have no one label
                raise BadInput(422, f"the picture holds {len(reading.digits)} digits: a correction names one")
            digit = to_mnist(image, source="upload")
            path = save_correction(folder, digit, label, data if keep_photo else None, f".{kind.lower()}")
        except DigitlabError as e:
            raise BadInput(413 if "too large" in str(e) else 422, str(e)) from None
        count = len(list(path.parent.glob("*.png")))  # this label's corrections so far
        return {"label": label, "saved": path.relative_to(folder).as_posix(), "count": count}

    def read(self, data: bytes) -> dict[str, Any]:
        """Decode, preprocess and predict an upload that passed check()."""
        try:
            image = load_image(io.BytesIO(data), MAX_PIXELS, name="upload")
            # several digits: the number, each digit's box, label and 28x28; one: as before, and its box
            reading = read_number(self.predictor, image, source="upload", k=TOP_K, guard=self.lock, cut_lone=False)
            if reading.looks_like_a_number:
                return reading.as_json(_png_base64)
            digit = to_mnist(image, source="upload")
        except DigitlabError as e:
            status = 413 if "too large" in str(e) or "bomb" in str(e) else 422
            raise BadInput(status, str(e)) from None
        with self.lock:
            found = self.predictor.predict(digit[None], k=TOP_K)
        classes = self.predictor.classes
        label, probability = found.answers[0], found.top_k[0][0][1]  # the likeliest comes first in top_k
        result: dict[str, Any] = {
            "label": label,  # None where the model abstains, with the reason
            "reason": (found.reasons or [None])[0],
            "probabilities": found.shown(0),
            "top_k": [[c, p] for c, p in found.top_k[0]],
            "image_png_base64": _png_base64(digit),
            "number": label,
            "digits": [{"box": list(reading.box), "line": 0, "label": label, "probability": probability}],
        }
        if self.ideals is not None:
            distances = mnist_distance(digit.float()[None] / 255, self.ideals)[0]  # (C,) L1 to each ideal digit
            result["distances"] = {c: round(float(d), 6) for c, d in zip(classes, distances)}
            result["nearest_ideal"] = classes[int(distances.argmin())]
        return result


class SecurityHeaders:
    """ASGI middleware: SECURITY_HEADERS on every response (an app's own or an error)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _busy(what: str) -> BadInput:
    return BadInput(503, f"the server is busy ({what}): retry shortly", {"Retry-After": str(RETRY_AFTER_S)})


def create_app(
    model_dir: Path, threads: int | None = 1, device: str = "cpu", corrections: Path | None = None
) -> FastAPI:
    """The app for one model. threads: torch threads in this process (one image of 28x28 is
    too small to share between threads; scale with server processes instead, `--workers`).
    device: where the model runs (resolved: cpu, cuda, mps).
    corrections: the folder POST /api/correct saves to (None: no such endpoint)."""
    if threads:
        torch.set_num_threads(threads)
    predictor = Predictor.load(model_dir, device)
    card = predictor.card
    reader = UploadReader(predictor, load_ideal_digits(model_dir, len(card.classes)))
    # Two lanes of one thread each: small images never queue behind a large photo's decoding.
    small_lane = ThreadPoolExecutor(1, thread_name_prefix="digitlab-small")
    large_lane = ThreadPoolExecutor(1, thread_name_prefix="digitlab-large")
    in_flight = {"predictions": 0, "large": 0, "bytes": 0}  # touched on the event loop only

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        for lane in (small_lane, large_lane):
            lane.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="digitlab",
        description="Draw a digit; a model trained with digitlab reads it.",
        version=(card.versions or {}).get("digitlab", ""),
        docs_url=None,  # FastAPI's Swagger UI and ReDoc load from a CDN: /docs is a page of the package
        redoc_url=None,
        lifespan=lifespan,
    )
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(BadInput)
    async def bad_input(request: Request, exc: BadInput) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=exc.headers)

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": card.architecture.name,
            "classes": list(card.classes),
            "accuracy": card.metrics.accuracy if card.metrics else None,
            "max_upload_bytes": MAX_BODY,
            "corrections": corrections is not None,
        }

    @app.post("/api/predict", responses={400: {}, 408: {}, 413: {}, 415: {}, 422: {}, 503: {}})
    async def predict(request: Request) -> Response:
        return await answer(request, reader.read)

    if corrections is not None:
        folder = corrections

        @app.post("/api/correct", responses={400: {}, 408: {}, 413: {}, 415: {}, 422: {}, 503: {}})
        async def correct(request: Request, label: str, keep_photo: bool = False) -> Response:
            try:
                check_label(label, card.classes, "label")
            except DigitlabError as e:
                raise BadInput(422, str(e)) from None
            return await answer(request, lambda data: reader.correct(data, label, folder, keep_photo))

    async def answer(request: Request, work: Callable[[bytes], dict[str, Any]]) -> Response:
        """An upload read within the limits, then `work` on its bytes in a lane off the event loop."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
            size = f"{int(declared) / 2**20:.2f} MB"
            raise BadInput(413, f"the image is too large: {size} (limit {_mb(MAX_BODY)}){SMALLER}")
        held = 0  # bytes of this upload counted in in_flight["bytes"]

        async def read_body() -> bytes:
            nonlocal held
            body = bytearray()
            async for chunk in request.stream():  # also bounds bodies sent without a length
                body += chunk
                held += len(chunk)
                in_flight["bytes"] += len(chunk)
                if len(body) > MAX_BODY:
                    raise BadInput(413, f"the image is too large: over the {_mb(MAX_BODY)} limit{SMALLER}")
                if in_flight["bytes"] > MAX_BYTES_IN_FLIGHT:
                    raise _busy(f"{MAX_BYTES_IN_FLIGHT // 2**20} MB of uploads held")
            return bytes(body)

        try:
            try:
                data = await asyncio.wait_for(read_body(), BODY_TIMEOUT_S)
            except asyncio.TimeoutError:
                raise BadInput(408, f"the upload did not arrive within {BODY_TIMEOUT_S:g} s") from None
            except ClientDisconnect:
                client = request.client
                peer = f"{client.host}:{client.port}" if client else "a client"
                log.warning("%s: dropped, disconnected during its upload", peer)
                return Response(status_code=400)  # nobody reads it
            large = reader.check(data) > LARGE_PIXELS
            if in_flight["predictions"] >= MAX_IN_FLIGHT:
                raise _busy(f"{MAX_IN_FLIGHT} predictions waiting")
            if large and in_flight["large"] >= MAX_LARGE_IN_FLIGHT:
                raise _busy(f"{MAX_LARGE_IN_FLIGHT} large images waiting")
            in_flight["predictions"] += 1
            in_flight["large"] += int(large)
            try:
                # Off the event loop: a 16 MP photo takes a second to decode and preprocess,
                # and the loop must keep answering everyone else meanwhile.
                lane = large_lane if large else small_lane
                result = await asyncio.get_running_loop().run_in_executor(lane, work, data)
            finally:
                in_flight["predictions"] -= 1
                in_flight["large"] -= int(large)
        finally:
            in_flight["bytes"] -= held
        return JSONResponse(result)

    def static(name: str) -> Response:
        text = resources.files("digitlab.web").joinpath("static").joinpath(name).read_text(encoding="utf-8")
        return Response(text, media_type=MEDIA[Path(name).suffix])

    @app.get("/", response_class=HTMLResponse)
    def index() -> Response:
        return static("index.html")

    app.add_api_route("/", index, methods=["HEAD"], include_in_schema=False)  # HEAD: headers, no body

    @app.api_route("/docs", methods=["GET", "HEAD"], include_in_schema=False)
    def docs() -> Response:
        return static("docs.html")

    def asset(name: str) -> Callable[[], Response]:
        # No parameters: FastAPI would read one (even `lambda name=name: ...`) from the query string
        def serve() -> Response:
            return static(name)

        return serve

    for name in STATIC[1:]:
        if name != "docs.html":
            app.add_api_route(f"/{name}", asset(name), methods=["GET", "HEAD"], include_in_schema=False)
    return app


MODEL_ENV = "DIGITLAB_SERVE_MODEL"  # how `digitlab serve --workers N` tells each worker process its model
DEVICE_ENV = "DIGITLAB_SERVE_DEVICE"  # ... and the device it runs on
CORRECTIONS_ENV = "DIGITLAB_SERVE_CORRECTIONS"  # ... and its --corrections folder, if any


def app_from_env() -> FastAPI:
    """The app for a uvicorn worker process started by `digitlab serve --workers N`."""
    import os

    corrections = os.environ.get(CORRECTIONS_ENV)
    return create_app(
        Path(os.environ[MODEL_ENV]),
        device=os.environ.get(DEVICE_ENV, "cpu"),
        corrections=Path(corrections) if corrections else None,
    )
