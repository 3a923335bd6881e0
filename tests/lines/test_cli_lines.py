"""`digitlab train --model line-reader` and `digitlab predict --lines`, as a user types them."""

from __future__ import annotations

import json

import pytest

from digitlab.artifacts.serialization import LINE_META, LINE_WEIGHTS
from digitlab.cli import main


@pytest.fixture(scope="module")
def mirror_env(offline_mnist):
    _, home = offline_mnist
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DIGITLAB_HOME", str(home))
        mp.setenv("DIGITLAB_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def short_epochs():
    """Epochs of 64 lines and 128 lines scored: the whole command in seconds (a real run: 16,000 an epoch)."""
    from digitlab.train import line_recipe

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(line_recipe, "LINES_PER_EPOCH", 64)
        mp.setattr(line_recipe, "VALID_LINES", 32)
        mp.setattr(line_recipe, "SCORED_LINES", 128)
        yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mirror_env, short_epochs):
    out = tmp_path_factory.mktemp("lines") / "run"
    argv = ["train", "--model", "line-reader", "--data", "mnist", "--epochs", "2", "--bs", "16", "--threads", "1"]
    assert main([*argv, "--out", str(out), "--json", "--quiet"]) == 0
    return out


def test_training_writes_a_run_folder_with_the_reader_and_its_card(trained):
    assert sorted(p.name for p in trained.iterdir()) == sorted([LINE_META, LINE_WEIGHTS])
    card = json.loads((trained / LINE_META).read_text())
    assert card["architecture"]["name"] == "line-reader" and card["config"]["epochs"] == 2
    assert card["config"]["bs"] == 16 and card["config"]["model"] == "line-reader"
    assert set(card["scores"]) == {"spaced", "touching"} and len(card["history"]) == 2
    assert card["data"]["n_train"] == 8000 and card["data"]["n_valid"] == 2000


def test_the_json_says_what_was_trained_and_how_it_scored(tmp_path, capsys, mirror_env, short_epochs):
    out = tmp_path / "run"
    argv = ["train", "--model", "line-reader", "--data", "mnist", "--epochs", "1", "--bs", "16", "--threads", "1"]
    assert main([*argv, "--out", str(out), "--json", "--quiet"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["model"] == "line-reader" and answer["epochs"] == 1 and answer["n_train"] == 8000
    assert set(answer["scores"]) == {"spaced", "touching"} and answer["model_path"] == str(out / LINE_WEIGHTS)
    assert answer["config"]["seed"] == 42 and len(answer["history"]) == 1 and answer["threads"] == 1


@pytest.mark.parametrize("flag", [["--checkpoints"], ["--report"], ["--lr-find"], ["--tta"], ["--outliers", "0.5"]])
def test_what_a_line_reader_does_not_do_is_said_not_ignored(tmp_path, capsys, flag, mirror_env):
    assert main(["train", "--model", "line-reader", "--data", "mnist", "--out", str(tmp_path / "x"), *flag]) == 2
    assert f"{flag[0]}: not for a line-reader" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_line_reader_is_not_trained_under_torchrun(tmp_path, capsys, mirror_env, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "--model", "line-reader", "--data", "mnist", "--out", str(tmp_path / "x")]) == 2
    assert "trains in one process: run it without torchrun" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_threes_and_sevens_are_not_enough_for_a_line_reader(tmp_path, capsys, mirror_env):
    assert main(["train", "--model", "line-reader", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "learns all ten digits" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_folder_of_the_users_files_is_refused_and_kept(tmp_path, capsys, mirror_env):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    assert main(["train", "--model", "line-reader", "--data", "mnist", "--out", str(folder), "--overwrite"]) == 2
    assert (folder / "thesis.tex").read_text() == "years of work" and len(list(folder.iterdir())) == 1


def test_a_line_reader_run_is_replaced_only_with_overwrite(trained, tmp_path, capsys, mirror_env):
    argv = ["train", "--model", "line-reader", "--data", "mnist", "--out", str(trained), "--quiet"]
    assert main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_predict_lines_reports_each_lines_check(trained, digit_cnn, clear_digits, number_picture, tmp_path, capsys):
    photo, _ = number_picture(["2026"], clear_digits)
    photo.save(tmp_path / "year.jpg")
    argv = ["predict", str(digit_cnn), str(tmp_path / "year.jpg"), "--number", "--lines", str(trained), "--json"]
    assert main(argv) == 0
    (answer,) = json.loads(capsys.readouterr().out)["predictions"]
    assert answer["number"] == "2026"  # the digit model's digits: a line reader trained for seconds only checks
    (line,) = answer["lines"]
    assert set(line) == {"line", "digits", "line_reader", "line_reader_probability", "agreed", "recut"}
    assert answer["agreed"] == line["agreed"] == (line["line_reader"] == "2026")
    assert main(["predict", str(digit_cnn), str(tmp_path / "year.jpg"), "--number", "--lines", str(trained)]) == 0
    assert "the line reader" in capsys.readouterr().out


def test_predict_lines_given_a_digit_model_says_so(digit_cnn, tmp_path, capsys):
    (tmp_path / "x.png").write_bytes(b"")
    assert main(["predict", str(digit_cnn), str(tmp_path / "x.png"), "--lines", str(digit_cnn)]) == 2
    assert "a digit model, not a line reader" in capsys.readouterr().err


def test_serve_lines_checks_the_numbers_the_page_sends(trained, digit_cnn, clear_digits, number_picture):
    import io

    from fastapi.testclient import TestClient

    from digitlab.web.app import create_app

    photo, _ = number_picture(["2026"], clear_digits)
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=90)
    with TestClient(create_app(digit_cnn, lines=trained)) as client:
        body = client.post("/api/predict", content=buffer.getvalue()).json()
    assert body["number"] == "2026" and body["agreed"] == (body["lines"][0]["line_reader"] == "2026")
    assert all("image_png_base64" in d for d in body["digits"])


def test_serve_refuses_a_line_reader_folder_that_is_not_one(digit_cnn, capsys):
    assert main(["serve", str(digit_cnn), "--lines", str(digit_cnn), "--port", "0"]) == 2
    assert "a digit model, not a line reader" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["evaluate"], ["predict"], ["report"]])
def test_a_line_reader_given_as_the_model_says_what_it_is(trained, tmp_path, capsys, command, mirror_env):
    (tmp_path / "x.png").write_bytes(b"")
    argv = [*command, str(trained)] + ([str(tmp_path / "x.png")] if command == ["predict"] else [])
    assert main(argv) == 2
    assert "a line reader, not a digit model" in capsys.readouterr().err
