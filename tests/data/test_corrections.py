"""Corrections: the 28x28 the model saw, saved under its true label, read back as a dataset."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from digitlab.cli import main
from digitlab.data.corrections import MARKER, check_label, load_corrections, save_correction
from digitlab.data.loading import load_dataset
from digitlab.errors import DigitlabError


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _digit(value: int) -> torch.Tensor:
    digit = torch.zeros(28, 28, dtype=torch.uint8)
    digit[4:24, 12:16] = value  # (28, 28) uint8: a bar, its brightness telling digits apart
    return digit


def test_saved_corrections_load_as_a_dataset_of_one_class_or_more(tmp_path):
    folder = tmp_path / "my-digits"
    first = save_correction(folder, _digit(200), "7", photo=b"\xff\xd8 the photo's bytes", suffix=".JPG")
    assert first.parent == folder / "7" and first.suffix == ".png" and (folder / MARKER).is_file()
    assert torch.equal(torch.from_numpy(np.array(Image.open(first))), _digit(200))
    photo = first.with_name(first.stem + ".photo.jpg")
    assert photo.read_bytes() == b"\xff\xd8 the photo's bytes"
    assert save_correction(folder, _digit(200), "7") == first  # the same digit again: one file
    save_correction(folder, _digit(180), "7")
    one_class = load_dataset(str(folder))  # the photo beside its digit is not data
    assert one_class.classes == ("7",) and len(one_class.train) == 2 and one_class.valid is None
    assert one_class.provenance["source"] == "corrections"
    save_correction(folder, _digit(150), "1")
    two = load_corrections(folder)
    assert two.classes == ("1", "7") and two.train.counts() == {"1": 1, "7": 2}


def test_labels_must_be_classes_of_the_model(tmp_path):
    assert check_label("7", ("3", "7")) == "7"
    with pytest.raises(DigitlabError, match=r"--correct 5: the model has no class '5' \(its classes: 3, 7\)"):
        check_label("5", ("3", "7"))
    with pytest.raises(DigitlabError, match="cannot be a folder name"):
        check_label("../x", ("../x", "7"))
    with pytest.raises(DigitlabError, match="28, 28"):
        save_correction(tmp_path, torch.zeros(20, 20, dtype=torch.uint8), "7")


@pytest.fixture
def bar_model(tmp_path, png_tree, train_cli, capsys):
    png_tree(tmp_path / "sample", {"train": 20, "valid": 8})
    train_cli(tmp_path / "sample", tmp_path / "run", "--model", "linear", "--epochs", "3")
    capsys.readouterr()
    return tmp_path / "run"


def test_predict_correct_saves_what_the_model_saw(bar_model, tmp_path, capsys):
    image = Image.new("L", (120, 140), 255)
    ImageDraw.Draw(image).rectangle((54, 28, 66, 112), fill=0)
    path = tmp_path / "mine.jpg"
    image.convert("RGB").save(path)
    corrections = tmp_path / "corrections"
    args = ["predict", str(bar_model), str(path), "--correct", "7", "--corrections", str(corrections)]
    assert main([*args, "--json", "--keep-photo"]) == 0
    report = json.loads(capsys.readouterr().out)
    saved = corrections / "7" / report["correction"]["path"].rsplit("/", 1)[1]
    assert report["correction"]["label"] == "7" and saved.is_file()
    assert (saved.parent / (saved.stem + ".photo.jpg")).read_bytes() == path.read_bytes()
    dataset = load_dataset(str(corrections))
    from digitlab.reading.preprocessing import preprocess_file

    assert torch.equal(dataset.train.images[0], preprocess_file(path))  # the very 28x28 the model read

    for bad, message in (
        (["--correct", "5"], "--correct 5: the model has no class '5' (its classes: 3, 7)"),
        (["--keep-photo"], "--keep-photo keeps the photo of a correction: give --correct LABEL too"),
    ):
        assert main(["predict", str(bar_model), str(path), *bad, "--corrections", str(corrections)]) == 2
        assert capsys.readouterr().err.splitlines() == [f"digitlab: error: {message}"]
    assert sorted(p.name for p in (corrections / "7").iterdir()) == sorted([saved.name, saved.stem + ".photo.jpg"])
    other = tmp_path / "other.png"
    image.save(other)
    assert main(["predict", str(bar_model), str(path), str(other), "--correct", "7"]) == 2
    assert "give exactly one image file" in capsys.readouterr().err


def test_the_page_saves_corrections_only_when_serve_is_told_where(bar_model, tmp_path):
    from fastapi.testclient import TestClient

    from digitlab.web.app import create_app

    image = Image.new("L", (120, 140), 255)
    ImageDraw.Draw(image).rectangle((54, 28, 66, 112), fill=0)
    png = _png(image)
    with TestClient(create_app(bar_model)) as client:
        assert client.get("/api/health").json()["corrections"] is False
        assert client.post("/api/correct?label=7", content=png).status_code == 404
    folder = tmp_path / "page-digits"
    with TestClient(create_app(bar_model, corrections=folder)) as client:
        assert client.get("/api/health").json()["corrections"] is True
        first = client.post("/api/correct?label=7", content=png)
        assert first.status_code == 200 and first.json()["label"] == "7" and first.json()["count"] == 1
        saved = folder / first.json()["saved"]
        assert saved.parent == folder / "7" and not list(folder.glob("7/*.photo.*"))
        from digitlab.reading.preprocessing import to_mnist

        assert torch.equal(torch.from_numpy(np.array(Image.open(saved))), to_mnist(image))
        kept = client.post("/api/correct?label=3&keep_photo=true", content=png).json()
        assert (folder / kept["saved"]).with_name(kept["saved"].split("/")[1][:-4] + ".photo.png").read_bytes() == png
        refused = client.post("/api/correct?label=5", content=png)
        assert refused.status_code == 422 and refused.json() == {
            "error": "label 5: the model has no class '5' (its classes: 3, 7)"
        }
        assert client.post("/api/correct?label=7", content=b"not an image").status_code == 415
        pair = Image.new("L", (300, 140), 255)
        ImageDraw.Draw(pair).rectangle((54, 28, 66, 112), fill=0)
        ImageDraw.Draw(pair).rectangle((200, 28, 212, 112), fill=0)
        two = client.post("/api/correct?label=7", content=_png(pair))
        assert two.status_code == 422 and two.json()["error"] == "the picture holds 2 digits: a correction names one"
        answer = client.post("/api/correct?label=7", content=_png(Image.new("L", (50, 50), 255)))
        assert answer.status_code == 422 and "no digit found" in answer.json()["error"]
    assert load_corrections(folder).train.counts() == {"3": 1, "7": 1}
