"""`create_app(model_dir)`: a FastAPI app serving the draw-a-digit page and a JSON API.

POST /api/predict  body: the image bytes (PNG, JPEG, WebP, BMP or GIF, <= 2 MB, <= 16 MP)
                   -> label (null where the model abstains, with the reason: "not sure: 4 or 9?"),
                      probabilities, top 3 (rounded down to 6 decimals, as `digitlab predict`),
                      the 28x28 the model saw (PNG, base64),
                      the distance of that 28x28 to each ideal digit (the chapter's baseline),
                      and number (the label) and digits (one: its box, label, probability);
                   several digits -> only number ("2026") and digits (each: box, line, label,
                      probability, image_png_base64), as `digitlab predict --number`; marks that
                      do not read as a number (a face) are read as one picture, as `digitlab predict`;
                      with `serve --lines DIR` also agreed and lines (each: line, digits, line_reader,
                      line_reader_probability, agreed, recut), as `digitlab predict --lines`
POST /api/correct?label=7&keep_photo=false  body: the same image bytes (only with `serve --corrections DIR`)
                   -> saves the 28x28 the model saw as DIR/7/<id>.png (the photo beside it if keep_photo)
GET  /api/health   -> status, model, classes, accuracy, max_upload_bytes, corrections (is /api/correct on)
GET  /docs         -> the API's documentation (a page of the package that reads /openapi.json)
Every bad input is a 4xx JSON {"error": message}; the page and its scripts are served from
the package, so it works offline. One code path with the CLI: preprocessing.to_mnist, then
predict.predictor.Predictor (upload.py reads an upload's bytes into the answer).

Limits: an upload must arrive within BODY_TIMEOUT_S (408); per process, at most
MAX_BYTES_IN_FLIGHT bytes of uploads are held, MAX_IN_FLIGHT predictions wait or run, and
MAX_LARGE_IN_FLIGHT of them large (over LARGE_PIXELS): past any, a 503 with Retry-After. A slow
upload holds only the bytes it has sent, so stalled clients cannot crowd out predictions.
Predictions run in two one-thread pools off the event loop, one for large images and one for
the rest, so a 16 MP photo neither stalls the event loop nor delays the page's small drawings.
Every answer carries security headers (a Content-Security-Policy that allows the page's own
files only; security.py). Connection-level limits (header deadline, keep-alive, connection cap): server.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.requests import ClientDisconnect

from ..artifacts.card import ModelCard
from ..artifacts.serialization import load_ideal_digits
from ..data.corrections import check_corrections_folder, check_label
from ..errors import DigitlabError
from ..predict.lines import LineChecker
from ..predict.predictor import Predictor
from .security import SecurityHeaders
from .upload import BadInput, UploadReader

MAX_BODY = 2 * 1024 * 1024  # bytes of an upload (the page scales photos down to ~1 MB before sending)
LARGE_PIXELS = 1_000_000  # images over this take the large lane (the page sends 112 x 112)
MAX_IN_FLIGHT = 256  # predictions waiting or running per process (a drawing takes ~5 ms)
MAX_BYTES_IN_FLIGHT = 64 * 1024 * 1024  # upload bytes held per process (received, not yet answered)
MAX_LARGE_IN_FLIGHT = 4  # of which large images, waiting or running
BODY_TIMEOUT_S = 15.0  # the whole upload must arrive by then
RETRY_AFTER_S = 1
STATIC = ("index.html", "app.js", "style.css", "docs.html", "docs.js", "favicon.svg")
MEDIA = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

log = logging.getLogger("uvicorn.error")  # uvicorn's logger: one line, its format and level


SMALLER = ": send a smaller one (the page scales photos down before sending)"


def _mb(n: int) -> str:
    """Bytes in MB (2**20), as people read a limit: "2 MB", "4.5 MB"."""
    return f"{n / 2**20:.1f} MB".replace(".0 MB", " MB")


def _busy(what: str) -> BadInput:
    return BadInput(503, f"the server is busy ({what}): retry shortly", {"Retry-After": str(RETRY_AFTER_S)})


def create_app(
    model_dir: Path,
    threads: int | None = 1,
    device: str = "cpu",
    corrections: Path | None = None,
    lines: Path | None = None,
) -> FastAPI:
    """The app for one model. threads: torch threads in this process (one image of 28x28 is
    too small to share between threads; scale with server processes instead, `--workers`).
    device: where the model runs (resolved: cpu, cuda, mps).
    corrections: the folder POST /api/correct saves to (None: no such endpoint).
    lines: a line reader's folder: numbers are checked by it (`digitlab.predict.checked`)."""
    if threads:
        torch.set_num_threads(threads)
    predictor = Predictor.load(model_dir, device)
    card = predictor.card
    checker = LineChecker.load(lines) if lines is not None else None
    reader = UploadReader(predictor, load_ideal_digits(model_dir, len(card.classes)), checker)
    gate = UploadGate(reader.check)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        gate.shutdown()

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

    _add_api(app, card, reader, gate, corrections)
    _add_pages(app)
    return app


class UploadGate:
    """Uploads read within the limits (size, time, bytes held, predictions waiting), then worked on in
    one of two one-thread lanes off the event loop: small images never queue behind a large photo."""

    def __init__(self, pixels: Callable[[bytes], int]) -> None:
        self.pixels = pixels  # an upload's image size, read from its header (a BadInput if unreadable)
        self.small_lane = ThreadPoolExecutor(1, thread_name_prefix="digitlab-small")
        self.large_lane = ThreadPoolExecutor(1, thread_name_prefix="digitlab-large")
        self.in_flight = {"predictions": 0, "large": 0, "bytes": 0}  # touched on the event loop only

    def shutdown(self) -> None:
        for lane in (self.small_lane, self.large_lane):
            lane.shutdown(wait=False, cancel_futures=True)

    async def answer(self, request: Request, work: Callable[[bytes], dict[str, Any]]) -> Response:
        """`work` on the upload's bytes, as JSON; a 4xx or 503 BadInput past a limit."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
            size = f"{int(declared) / 2**20:.2f} MB"
            raise BadInput(413, f"the image is too large: {size} (limit {_mb(MAX_BODY)}){SMALLER}")
        held = [0]  # bytes of this upload counted in in_flight["bytes"]
        try:
            try:
                data = await asyncio.wait_for(self._read_body(request, held), BODY_TIMEOUT_S)
            except asyncio.TimeoutError:
                raise BadInput(408, f"the upload did not arrive within {BODY_TIMEOUT_S:g} s") from None
            except ClientDisconnect:
                client = request.client
                peer = f"{client.host}:{client.port}" if client else "a client"
                log.warning("%s: dropped, disconnected during its upload", peer)
                return Response(status_code=400)  # nobody reads it
            return JSONResponse(await self._work(data, work, self.pixels(data) > LARGE_PIXELS))
        finally:
            self.in_flight["bytes"] -= held[0]

    async def _read_body(self, request: Request, held: list[int]) -> bytes:
        body = bytearray()
        async for chunk in request.stream():  # also bounds bodies sent without a length
            body += chunk
            held[0] += len(chunk)
            self.in_flight["bytes"] += len(chunk)
            if len(body) > MAX_BODY:
                raise BadInput(413, f"the image is too large: over the {_mb(MAX_BODY)} limit{SMALLER}")
            if self.in_flight["bytes"] > MAX_BYTES_IN_FLIGHT:
                raise _busy(f"{MAX_BYTES_IN_FLIGHT // 2**20} MB of uploads held")
        return bytes(body)

    async def _work(self, data: bytes, work: Callable[[bytes], dict[str, Any]], large: bool) -> dict[str, Any]:
        if self.in_flight["predictions"] >= MAX_IN_FLIGHT:
            raise _busy(f"{MAX_IN_FLIGHT} predictions waiting")
        if large and self.in_flight["large"] >= MAX_LARGE_IN_FLIGHT:
            raise _busy(f"{MAX_LARGE_IN_FLIGHT} large images waiting")
        self.in_flight["predictions"] += 1
        self.in_flight["large"] += int(large)
        try:
            # Off the event loop: a 16 MP photo takes a second to decode and preprocess,
            # and the loop must keep answering everyone else meanwhile.
            lane = self.large_lane if large else self.small_lane
            return await asyncio.get_running_loop().run_in_executor(lane, work, data)
        finally:
            self.in_flight["predictions"] -= 1
            self.in_flight["large"] -= int(large)


def _add_api(app: FastAPI, card: ModelCard, reader: UploadReader, gate: UploadGate, corrections: Path | None) -> None:
    """GET /api/health, POST /api/predict and, with a corrections folder, POST /api/correct."""

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
        return await gate.answer(request, reader.read)

    if corrections is None:
        return
    check_corrections_folder(corrections)  # before serving: a wrong folder is the command's error
    folder = corrections

    @app.post("/api/correct", responses={400: {}, 408: {}, 413: {}, 415: {}, 422: {}, 503: {}})
    async def correct(request: Request, label: str, keep_photo: bool = False) -> Response:
        try:
            check_label(label, card.classes, "label")
        except DigitlabError as e:
            raise BadInput(422, str(e)) from None
        return await gate.answer(request, lambda data: reader.correct(data, label, folder, keep_photo))


def _add_pages(app: FastAPI) -> None:
    """The page, its files and /docs, from the package (GET and HEAD)."""

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
    # browsers ask for /favicon.ico whatever the page links: the same icon, not a 404 in every log
    app.add_api_route("/favicon.ico", asset("favicon.svg"), methods=["GET", "HEAD"], include_in_schema=False)


MODEL_ENV = "DIGITLAB_SERVE_MODEL"  # how `digitlab serve --workers N` tells each worker process its model
DEVICE_ENV = "DIGITLAB_SERVE_DEVICE"  # ... and the device it runs on
CORRECTIONS_ENV = "DIGITLAB_SERVE_CORRECTIONS"  # ... and its --corrections folder, if any
LINES_ENV = "DIGITLAB_SERVE_LINES"  # ... and its --lines reader, if any


def app_from_env() -> FastAPI:
    """The app for a uvicorn worker process started by `digitlab serve --workers N`."""
    import os

    corrections, lines = os.environ.get(CORRECTIONS_ENV), os.environ.get(LINES_ENV)
    return create_app(
        Path(os.environ[MODEL_ENV]),
        device=os.environ.get(DEVICE_ENV, "cpu"),
        corrections=Path(corrections) if corrections else None,
        lines=Path(lines) if lines else None,
    )
