"""`create_app(model_dir)`: a FastAPI app serving the draw-a-digit page and a JSON API.

POST /api/predict  body: the image bytes (PNG, JPEG, WebP, BMP or GIF, <= 2 MB, <= 16 MP)
                   -> label, probabilities, top 3 (rounded down to 6 decimals, as `digitlab predict`),
                      the 28x28 the model saw (PNG, base64),
                      and the distance of that 28x28 to each ideal digit (the chapter's baseline)
GET  /api/health   -> status, model, classes
Every bad input is a 4xx JSON {"error": message}; the page and its scripts are served from
the package, so it works offline. One code path with the CLI: preprocessing.to_mnist, then
run.predictor.Predictor.
"""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image

from ..baseline import mnist_distance
from ..errors import DigitlabError
from ..preprocessing import load_image, to_mnist
from ..run.predictor import Predictor
from ..run.serialization import load_ideal_digits

MAX_BODY = 2 * 1024 * 1024  # bytes of an upload
MAX_PIXELS = 16_000_000  # decoded image size: a phone photo fits, a decompression bomb does not
FORMATS = {"PNG", "JPEG", "WEBP", "BMP", "GIF"}
TOP_K = 3  # the likeliest classes an answer lists
STATIC = ("index.html", "app.js", "style.css")
MEDIA = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


class BadInput(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _png_base64(image: torch.Tensor) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image.numpy()).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


class UploadReader:
    """An upload's bytes -> the model's answer, with the ideal digits beside it; safe from many threads."""

    def __init__(self, predictor: Predictor, ideals: torch.Tensor | None) -> None:
        self.predictor, self.ideals = predictor, ideals
        # One image at a time: under the GIL, threads preprocessing side by side were slower
        # (bench/bench_serve.py), and torch's own threads already use the cores.
        self.lock = threading.Lock()

    def predict(self, data: bytes) -> dict[str, Any]:
        if not data:
            raise BadInput(400, "empty body: send the image's bytes")
        try:
            with Image.open(io.BytesIO(data)) as probe:
                kind = probe.format
        except Image.DecompressionBombError as e:
            raise BadInput(413, f"the image is too large to decode ({e})") from None
        except Exception:
            raise BadInput(415, "not an image: send PNG, JPEG, WebP, BMP or GIF bytes") from None
        if kind not in FORMATS:
            raise BadInput(415, f"{kind} images are not accepted: send PNG, JPEG, WebP, BMP or GIF")
        with self.lock:
            try:
                digit = to_mnist(load_image(io.BytesIO(data), MAX_PIXELS, name="upload"), source="upload")
            except DigitlabError as e:
                status = 413 if "too large" in str(e) or "bomb" in str(e) else 422
                raise BadInput(status, str(e)) from None
            found = self.predictor.predict(digit[None], k=TOP_K)
        classes = self.predictor.classes
        result: dict[str, Any] = {
            "label": found.labels[0],
            "probabilities": found.shown(0),
            "top_k": [[label, p] for label, p in found.top_k[0]],
            "image_png_base64": _png_base64(digit),
        }
        if self.ideals is not None:
            distances = mnist_distance(digit.float()[None] / 255, self.ideals)[0]  # (C,) L1 to each ideal digit
            result["distances"] = {c: round(float(d), 6) for c, d in zip(classes, distances)}
            result["nearest_ideal"] = classes[int(distances.argmin())]
        return result


def create_app(model_dir: Path, threads: int | None = 1) -> FastAPI:
    """The app for one model. threads: torch threads in this process (one image of 28x28 is
    too small to share between threads; scale with server processes instead, `--workers`)."""
    if threads:
        torch.set_num_threads(threads)
    predictor = Predictor.load(model_dir)
    card = predictor.card
    reader = UploadReader(predictor, load_ideal_digits(model_dir, len(card.classes)))
    app = FastAPI(
        title="digitlab",
        description="Draw a digit; a model trained with digitlab reads it.",
        version=(card.versions or {}).get("digitlab", ""),
    )

    @app.exception_handler(BadInput)
    async def bad_input(request: Request, exc: BadInput) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": card.architecture.name,
            "classes": list(card.classes),
            "accuracy": card.metrics.accuracy if card.metrics else None,
        }

    @app.post("/api/predict", responses={400: {}, 413: {}, 415: {}, 422: {}})
    async def predict(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
            raise BadInput(413, f"the image is too large: {int(declared):,} bytes (limit {MAX_BODY:,})")
        body = bytearray()
        async for chunk in request.stream():  # also bounds bodies sent without a length
            body += chunk
            if len(body) > MAX_BODY:
                raise BadInput(413, f"the image is too large: over {MAX_BODY:,} bytes")
        # Run here, on the event loop: a prediction is ~5 ms of CPU and one process serves one
        # image at a time anyway, so a hop to a thread pool would only add latency (bench_serve.py).
        # Throughput comes from more processes (--workers).
        return JSONResponse(reader.predict(bytes(body)))

    def static(name: str) -> Response:
        text = resources.files("digitlab.web").joinpath("static").joinpath(name).read_text(encoding="utf-8")
        return Response(text, media_type=MEDIA[Path(name).suffix])

    @app.get("/", response_class=HTMLResponse)
    def index() -> Response:
        return static("index.html")

    def asset(name: str) -> Callable[[], Response]:
        # No parameters: FastAPI would read one (even `lambda name=name: ...`) from the query string
        def serve() -> Response:
            return static(name)

        return serve

    for name in STATIC[1:]:
        app.add_api_route(f"/{name}", asset(name), methods=["GET"], include_in_schema=False)
    return app


MODEL_ENV = "DIGITLAB_SERVE_MODEL"  # how `digitlab serve --workers N` tells each worker process its model


def app_from_env() -> FastAPI:
    """The app for a uvicorn worker process started by `digitlab serve --workers N`."""
    import os

    return create_app(Path(os.environ[MODEL_ENV]))
