"""Reading an upload: its bytes -> the model's answer (`UploadReader`), or a BadInput that the app
answers as a 4xx JSON {"error": message}. The same steps as the CLI: preprocessing.load_image and
to_mnist, predict.numbers.read_number, then predict.predictor.Predictor; the ideal digits' distances beside."""

from __future__ import annotations

import base64
import io
import threading
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..baseline import mnist_distance
from ..data.corrections import save_correction
from ..errors import BrokenModelError, DigitlabError
from ..predict.lines import LineChecker
from ..predict.numbers import read_number
from ..predict.predictor import Predictor
from ..reading.preprocessing import load_image, to_mnist

MAX_PIXELS = 16_000_000  # decoded image size: a phone photo fits, a decompression bomb does not
FORMATS = {"PNG", "JPEG", "WEBP", "BMP", "GIF"}
TOP_K = 3  # the likeliest classes an answer lists


class BadInput(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers


def _png_base64(image: torch.Tensor) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image.numpy()).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


class UploadReader:
    """An upload's bytes -> the model's answer, with the ideal digits beside it; safe from many threads."""

    def __init__(self, predictor: Predictor, ideals: torch.Tensor | None, lines: LineChecker | None = None) -> None:
        self.predictor, self.ideals, self.lines = predictor, ideals, lines  # lines: checks numbers' lines
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
            reading = read_number(
                self.predictor, image, source="upload", k=TOP_K, guard=self.lock, cut_lone=False, lines=self.lines
            )
            if reading.looks_like_a_number:
                return reading.as_json(_png_base64)
            digit = to_mnist(image, source="upload")
        except DigitlabError as e:
            status = 413 if "too large" in str(e) or "bomb" in str(e) else 422
            raise BadInput(status, str(e)) from None
        with self.lock:
            try:
                found = self.predictor.predict(digit[None], k=TOP_K)
            except BrokenModelError as e:  # the model, not the upload: still no 500 and no traceback
                raise BadInput(422, str(e)) from None
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
