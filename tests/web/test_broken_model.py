"""A model that answers NaN once served: each prediction is a 422 with one line, never a 500."""

from __future__ import annotations

import httpx
import torch
from PIL import Image, ImageDraw


def test_the_server_answers_422_when_the_model_answers_nan(tmp_path, png_tree, train_cli, monkeypatch, serve_model):
    png_tree(tmp_path / "sample", {"train": 6, "valid": 3})
    run = tmp_path / "run"
    train_cli(tmp_path / "sample", run, "--epochs", "1")
    photo = tmp_path / "photo.png"
    image = Image.new("L", (60, 60), 255)
    ImageDraw.Draw(image).line((30, 8, 30, 52), fill=0, width=6)
    image.save(photo)
    import digitlab.web.app as web_app
    from digitlab.predict.predictor import Predictor

    real = Predictor.load

    def load_then_break(*args, **kwargs):  # answers numbers when loaded, NaN afterwards
        predictor = real(*args, **kwargs)
        predictor.model.forward = lambda x: torch.full((len(x), 1), float("nan"))  # type: ignore[method-assign]
        return predictor

    monkeypatch.setattr(web_app.Predictor, "load", load_then_break)
    with serve_model(run) as url:
        answer = httpx.post(f"{url}/api/predict", content=photo.read_bytes(), timeout=30)
    assert answer.status_code == 422
    assert "outputs are not numbers" in answer.json()["error"]
