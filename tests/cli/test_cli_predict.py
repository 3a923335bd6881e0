"""`digitlab predict` as a user runs it: a tiny model trained through the CLI reads image files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from digitlab.cli import main


def digit_image(vertical: bool, size: tuple[int, int] = (120, 140), ink: int = 0, paper: int = 255) -> Image.Image:
    """A thick bar, like the training data's classes (a vertical bar for "3", a horizontal one for "7")."""
    image = Image.new("L", size, paper)
    w, h = size
    box = (w // 2 - 6, h // 5, w // 2 + 6, h - h // 5) if vertical else (w // 5, h // 2 - 6, w - w // 5, h // 2 + 6)
    ImageDraw.Draw(image).rectangle(box, fill=ink)
    return image


@pytest.fixture
def model(tmp_path, png_tree, capsys, train_cli) -> Path:
    png_tree(tmp_path / "sample", {"train": 20, "valid": 8})
    run = tmp_path / "run"
    train_cli(tmp_path / "sample", run, "--model", "linear", "--epochs", "3", "--json")
    capsys.readouterr()
    return run


@pytest.fixture
def images(tmp_path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    digit_image(True).save(folder / "a.png")
    digit_image(False, ink=230, paper=20).convert("RGB").save(folder / "b.jpg", quality=60)
    digit_image(True, size=(300, 200)).save(folder / "c.gif")
    (folder / "notes.txt").write_text("not an image, and not an image file name: a folder skips it")
    return folder


def predict(capsys, *argv: str) -> tuple[int, dict]:
    code = main(["predict", *argv, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out)


def check_shape(report: dict, k: int = 2) -> None:
    assert set(report) == {"predictions", "errors"}
    for p in report["predictions"]:
        assert set(p) == {"path", "label", "reason", "top_k"}
        assert p["label"] in ("3", "7") if p["reason"] is None else p["label"] is None
        assert len(p["top_k"]) == k
        assert all(isinstance(label, str) and isinstance(prob, float) and 0 <= prob <= 1 for label, prob in p["top_k"])
        probs = [prob for _, prob in p["top_k"]]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1
        assert p["top_k"][0][0] == p["label"] or p["label"] is None
    for e in report["errors"]:
        assert set(e) == {"path", "error"} and e["error"]


def test_files_a_folder_and_a_glob(capsys, model, images):
    code, report = predict(capsys, str(model), str(images / "a.png"), str(images), str(images / "*.jpg"))
    assert code == 0
    check_shape(report)
    # a.png once (named, then found again in the folder), then the folder's images in order
    assert [p["path"] for p in report["predictions"]] == [str(images / n) for n in ("a.png", "b.jpg", "c.gif")]
    assert report["errors"] == []
    # the same bar on another canvas, as a GIF, gets the same answer
    labels = {Path(p["path"]).name: p["label"] for p in report["predictions"]}
    assert labels["a.png"] == labels["c.gif"]


def test_top_k_is_capped_by_the_classes_and_can_be_one(capsys, model, images):
    code, report = predict(capsys, str(model), str(images), "--top-k", "5")
    check_shape(report, k=2)
    code, report = predict(capsys, str(model), str(images), "--top-k", "1")
    assert code == 0
    check_shape(report, k=1)


def test_text_output_has_a_line_per_image(capsys, model, images):
    assert main(["predict", str(model), str(images)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(str(images / "a.png")) and "3 0." in lines[0] and "7 0." in lines[0]


def test_bad_files_are_reported_and_the_others_still_predicted(capsys, model, images, bomb_png):
    (images / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n this is no picture")
    whole = (images / "a.png").read_bytes()
    (images / "truncated.png").write_bytes(whole[: len(whole) // 2])
    Image.new("L", (80, 80), 255).save(images / "blank.png")
    bomb_png(images / "bomb.png", 5000, 5000)
    code, report = predict(capsys, str(model), str(images), str(images / "missing.png"))
    assert code == 1
    check_shape(report)
    assert sorted(Path(p["path"]).name for p in report["predictions"]) == ["a.png", "b.jpg", "c.gif"]
    errors = {Path(e["path"]).name: e["error"] for e in report["errors"]}
    assert set(errors) == {"garbage.png", "truncated.png", "blank.png", "bomb.png", "missing.png"}
    assert "no digit found" in errors["blank.png"]
    assert "decompression bomb" in errors["bomb.png"] and "5000x5000" in errors["bomb.png"]
    assert "truncated" in errors["truncated.png"]
    assert "no such file" in errors["missing.png"]
    # without --json, the errors go to stderr and the answers to stdout
    assert main(["predict", str(model), str(images / "a.png"), str(images / "blank.png")]) == 1
    captured = capsys.readouterr()
    assert "a.png" in captured.out and "blank.png" not in captured.out
    assert "blank.png: no digit found" in captured.err and "Traceback" not in captured.err


def test_show_saves_each_input_next_to_what_the_model_saw(capsys, tmp_path, model, images):
    one, three = tmp_path / "one.png", tmp_path / "three.png"
    assert main(["predict", str(model), str(images / "a.png"), "--show", str(one), "--quiet"]) == 0
    assert main(["predict", str(model), str(images), "--show", str(three), "--quiet"]) == 0
    capsys.readouterr()
    with Image.open(one) as a, Image.open(three) as b:
        assert a.format == b.format == "PNG"
        assert b.height > 2.5 * a.height and a.width == b.width  # a row per image


@pytest.mark.parametrize("bad", ["folder", "missing", "json"])
def test_a_bad_model_is_exit_code_2(capsys, tmp_path, images, bad):
    path = {"folder": images, "missing": tmp_path / "nope", "json": tmp_path / "model.json"}[bad]
    (tmp_path / "model.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert main(["predict", str(path), str(images / "a.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("digitlab: error: ") and "not a digitlab model" in err and err.count("\n") == 1


def test_no_images_at_all_is_exit_code_2(capsys, tmp_path, model):
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(model), str(tmp_path / "empty"), str(tmp_path / "*.png"), str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "no images" in err and "no files match" in err and "without image files" in err


def test_top_k_must_be_positive(capsys, model, images):
    assert main(["predict", str(model), str(images), "--top-k", "0"]) == 2
    assert "--top-k" in capsys.readouterr().err
