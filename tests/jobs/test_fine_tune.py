"""Learning from corrections: a model that misreads a style of 7 learns it from 20 of them, and forgets nothing."""

from __future__ import annotations

import json

import torch

from digitlab.cli import main
from digitlab.data.corrections import save_correction
from digitlab.data.styles import continental_sevens
from digitlab.predict.predictor import Predictor


def read_as_seven(predictor: Predictor, images: torch.Tensor) -> float:
    return sum(label == "7" for label in predictor.predict(images, abstain=False).labels) / len(images)


def test_twenty_corrections_teach_a_style_of_seven_without_forgetting(
    digit_cnn, offline_mnist, tmp_path, capsys, monkeypatch
):
    data, home = offline_mnist
    monkeypatch.setenv("DIGITLAB_HOME", str(home))  # where the model's own data ("mnist") is cached
    monkeypatch.setenv("DIGITLAB_OFFLINE", "1")
    sevens = data.train.images[data.train.labels == 7]
    mine = tmp_path / "my-digits"
    for digit in continental_sevens(sevens[:20]):
        save_correction(mine, digit, "7")
    held_out = continental_sevens(data.valid.images[data.valid.labels == 7])  # the style on 7s it never saw
    before = Predictor.load(digit_cnn)
    assert read_as_seven(before, held_out) < 0.75  # it misreads the style (as 2, 4, 9...)

    out = tmp_path / "mine"
    assert main(["train", "--data", str(mine), "--init", str(digit_cnn), "--out", str(out), "--json", "--quiet"]) == 0
    found = json.loads(capsys.readouterr().out)["fine_tune"]
    assert found["mix"] == {"personal": 20, "repeats": 45, "original": 8000}
    assert found["personal"] == {"n": 20, "before": found["personal"]["before"], "after": 1.0}
    clean = found["original_valid"]
    assert clean["n"] == 2000 and clean["after"] >= clean["before"] - 0.002  # within 0.2% on clean held-out digits

    after = Predictor.load(out)
    assert read_as_seven(after, held_out) > 0.95
    assert after.evaluate(data.valid)["accuracy"] == clean["after"]
    card = after.card
    assert card.data is not None and card.data.spec == str(mine) and card.data.valid == "holdout"
    provenance = card.data.provenance
    assert provenance["original_data"] == "mnist" and provenance["fine_tuned_from"] == str(digit_cnn)
    assert card.normalization == before.card.normalization and card.abstain is not None

    # evaluate scores both models on the personal set
    for model, accuracy in ((digit_cnn, found["personal"]["before"]), (out, 1.0)):
        assert main(["evaluate", str(model), "--data", str(mine), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["accuracy"] == accuracy and report["n_valid"] == 20 and "false_reject_rate" in report["abstain"]


def test_bad_fine_tuning_is_one_line(digit_cnn, tmp_path, capsys):
    mine = tmp_path / "my-digits"
    save_correction(mine, torch.zeros(28, 28, dtype=torch.uint8).index_fill_(1, torch.arange(12, 16), 255), "7")
    odd = tmp_path / "odd"
    save_correction(odd, torch.full((28, 28), 9, dtype=torch.uint8), "x")  # a class the model lacks
    cases = [
        (["--data", str(mine), "--model", "simple_net"], "is a cnn model, not --model simple_net"),
        (["--data", str(odd)], "has classes the model lacks: x"),
        (["--data", str(mine), "--valid", "mnist"], "drop --valid"),
        (["--data", str(mine), "--init", str(tmp_path / "nothing")], "not a digitlab model"),
    ]
    for args, message in cases:
        init = [] if "--init" in args else ["--init", str(digit_cnn)]
        assert main(["train", *args, *init, "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) >= 1 and message in err.splitlines()[-1], err
    assert not (tmp_path / "out").exists()


def test_fine_tuning_photographs_digits_only_when_asked(digit_cnn, offline_mnist, tmp_path, monkeypatch):
    """A model trained with --photos is fine-tuned without photographing its mix again (minutes) unless
    --photos is given again."""
    import shutil

    from digitlab.config import Settings
    from digitlab.core.progress import quiet_log
    from digitlab.jobs.fine_tune import plan

    _, home = offline_mnist
    monkeypatch.setenv("DIGITLAB_HOME", str(home))
    monkeypatch.setenv("DIGITLAB_OFFLINE", "1")
    model = tmp_path / "photos-model"
    shutil.copytree(digit_cnn, model)
    card = json.loads((model / "model.json").read_text())
    card["config"]["photos"] = 0.25
    (model / "model.json").write_text(json.dumps(card))
    mine = tmp_path / "my-digits"
    save_correction(mine, torch.zeros(28, 28, dtype=torch.uint8).index_fill_(1, torch.arange(12, 16), 255), "1")
    settings = Settings.from_env()
    assert plan(model, str(mine), settings, quiet_log, {}).config.photos == 0.0
    assert plan(model, str(mine), settings, quiet_log, {"photos": 0.1}).config.photos == 0.1
