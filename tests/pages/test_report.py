"""`digitlab train --report`, `digitlab report` and `digitlab explain`: self-contained pages that
a real browser (Debian's chromium, headless) renders without a single network request."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from digitlab.artifacts.serialization import load_model, load_top_losses
from digitlab.baseline import PixelSimilarity
from digitlab.cli import main
from digitlab.data.digits import Digits
from digitlab.pages.explain import pick_examples
from digitlab.predict.predictor import Predictor
from digitlab.train.losses import mnist_loss


def _assert_self_contained(page: Path) -> int:
    text = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), "page links to the network"
    assert "@import" not in text and "url(http" not in text
    return text.count('src="data:image/png;base64,')


def _render(page: Path, browser_page) -> tuple[list[str], np.ndarray]:
    """Open the page in headless chromium; return every URL it requested and a screenshot."""
    requests: list[str] = []
    with browser_page(viewport={"width": 1100, "height": 1400}) as tab:
        tab.on("request", lambda request: requests.append(request.url))
        tab.goto(page.as_uri())
        tab.wait_for_load_state("load")
        png = tab.screenshot(full_page=True)
    return requests, np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)


def test_train_report_renders_offline(capsys, tmp_path, png_tree, train_cli, browser_page):
    png_tree(tmp_path / "sample", {"train": 12, "valid": 6})
    out = tmp_path / "run"
    train_cli(tmp_path / "sample", out, "--epochs", "3", "--report", "--json")
    result = json.loads(capsys.readouterr().out)
    page = Path(result["report"])
    assert page == out / "report.html"
    assert _assert_self_contained(page) == 5  # ideal digits, curves, confusion, top losses, weights
    text = page.read_text()
    assert f"accuracy {result['accuracy']:.4f}" in text and "pixel-similarity baseline" in text
    assert {p.name for p in (out / "report").glob("*.png")} == {
        "ideal_digits.png",
        "loss_curves.png",
        "confusion_matrix.png",
        "top_losses.png",
        "weights.png",
    }
    # the linear model trains at a constant lr: a sentence, not a flat line
    assert "constant lr 1.0" in text and not (out / "report" / "lr_schedule.png").exists()
    assert "highest mnist_loss (the loss the model trained with" in text and "Losses are mnist_loss" in text
    assert "source: source" not in text and "[&#x27;" not in text and "['" not in text  # words, not raw keys or lists
    requests, screenshot = _render(page, browser_page)
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    assert screenshot.shape[0] > 1400 and screenshot.std() > 20  # a long page, not blank


def test_report_command_on_an_existing_run(capsys, tmp_path, png_tree, train_cli):
    png_tree(tmp_path / "sample", {"train": 8, "valid": 4})
    out = tmp_path / "run"
    train_cli(tmp_path / "sample", out, "--model", "simple_net", "--epochs", "2")
    capsys.readouterr()
    assert main(["report", str(out), "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["html"] == str(out / "report.html") and len(written["figures"]) == 4  # constant lr: no schedule
    assert "What the linear model looks for" not in (out / "report.html").read_text()  # simple_net has no weight map


def _png_digits(folder: Path, classes: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 28, 28) uint8 images and (N,) class indices of a png_tree split."""
    pairs = [(np.asarray(Image.open(f)), i) for i, c in enumerate(classes) for f in sorted((folder / c).glob("*.png"))]
    return torch.from_numpy(np.stack([p for p, _ in pairs])), torch.tensor([i for _, i in pairs])


def test_report_top_losses_are_the_training_loss_of_the_curves(capsys, tmp_path, png_tree):
    png_tree(tmp_path / "sample", {"train": 12, "valid": 6})
    out = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "sample"), "--epochs", "2", "--out", str(out), "--quiet"]) == 0
    saved = load_model(out)
    images, labels = _png_digits(tmp_path / "sample" / "valid", saved.classes)
    items = Predictor.from_saved(saved).top_losses(Digits(images, labels, saved.classes), k=len(labels)).items()
    losses = torch.tensor([it["loss"] for it in items])
    assert ((losses >= 0) & (losses <= 1)).all()  # mnist_loss, not -log p
    with torch.no_grad():
        logits = saved.model(images.float() / 255)  # (N, 1), as the linear model trained
    targets = (labels == 0).float().unsqueeze(1)
    for it in items:
        i = it["index"]
        assert it["loss"] == pytest.approx(float(mnist_loss(logits[i : i + 1], targets[i : i + 1])), abs=1e-6)
    # the mean over the validation set is the last valid_loss of the curves beside them
    assert float(losses.mean()) == pytest.approx(saved.card.history[-1]["valid_loss"], abs=1e-5)
    # the run folder kept the first 9 of them, with their images, for the report
    kept = load_top_losses(out, len(saved.classes))
    assert kept is not None and len(kept) == 9 and kept.loss_name == "mnist_loss"
    assert kept.loss.tolist() == pytest.approx([it["loss"] for it in items[:9]], abs=1e-6)
    assert torch.equal(kept.images[0], images[items[0]["index"]])  # the same digit, from the run folder


def test_a_scheduled_run_shows_its_schedule_and_cross_entropy(capsys, tmp_path, png_tree, train_cli):
    png_tree(tmp_path / "sample", {"train": 8, "valid": 4})
    out = tmp_path / "run"
    train_cli(tmp_path / "sample", out, "--model", "cnn", "--epochs", "2", "--bs", "4", "--report")
    text = (out / "report.html").read_text()
    assert (out / "report" / "lr_schedule.png").exists() and "constant lr" not in text  # one-cycle: a curve
    assert "highest cross_entropy (label smoothing 0.1)" in text


def test_report_reads_the_run_folder_only(capsys, tmp_path, png_tree, monkeypatch):
    """Train from one working directory with a relative data path, move the run, delete the data and the
    cache, report from elsewhere: the page is the same run's, drawn from its folder alone."""
    home = tmp_path / "home"
    monkeypatch.setenv("DIGITLAB_HOME", str(home))
    work = tmp_path / "work"
    png_tree(work / "sample", {"train": 12, "valid": 6})
    monkeypatch.chdir(work)
    assert main(["train", "--data", "sample", "--epochs", "2", "--out", "run", "--quiet", "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert any(home.iterdir())  # the folder of PNGs was decoded into the cache
    moved = tmp_path / "elsewhere" / "moved-run"
    moved.parent.mkdir()
    shutil.move(work / "run", moved)
    shutil.rmtree(work)
    shutil.rmtree(home)
    monkeypatch.setenv("DIGITLAB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["report", "moved-run", "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert not home.exists()  # nothing was loaded, downloaded or cached
    assert len(written["figures"]) == 5
    text = (moved / "report.html").read_text()
    assert f"accuracy {trained['accuracy']:.4f} on 12 validation images" in text
    assert "digitlab run: linear on sample" in text and 'training images</td><td class="">24' in text
    assert "pixel similarity (L1)" in text and "highest mnist_loss" in text


def test_report_needs_the_saved_evaluation(capsys, tmp_path, png_tree):
    png_tree(tmp_path / "sample", {"train": 6, "valid": 3})
    out = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "sample"), "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    (out / "top_losses.safetensors").unlink()
    assert main(["report", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no saved top losses" in err and "digitlab evaluate" in err and err.count("\n") == 1


def test_report_on_a_folder_that_is_not_a_run(capsys, tmp_path):
    assert main(["report", str(tmp_path)]) == 2
    assert "not a digitlab model" in capsys.readouterr().err


def _pixel_cells(html: str) -> list[int]:
    return [int(v) for v in re.findall(r"<td [^>]*>(\d+)</td>", html)]


def test_explain_draws_the_chapter(capsys, tmp_path, png_tree, browser_page):
    png_tree(tmp_path / "sample", {"train": 10, "valid": 5})
    # a 7 filed as a 3: the baseline misclassifies it, and it comes first of the 3s
    valid = tmp_path / "sample" / "valid"
    shutil.copy(min((valid / "7").glob("*.png")), min((valid / "3").glob("*.png")))
    assert main(["explain", "--data", str(tmp_path / "sample"), "--out", str(tmp_path / "figs"), "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    names = {Path(f).name for f in written["figures"]}
    from digitlab.pages.explain import EXPLAIN_FILES

    assert names == EXPLAIN_FILES - {"explain.html"}  # what it owns is what it writes (the folder check)
    page = Path(written["html"])
    assert _assert_self_contained(page) == 8
    text = page.read_text()
    # each pixel table names its crop and shows ink, not background
    assert "The centre of the image (centre: rows 7-20, columns 7-20)" in text
    assert "The book's view, im3[4:15, 4:22] (rows 4-14, columns 4-21)" in text
    cells = _pixel_cells(text)
    assert len(cells) == 11 * 18 and max(cells) > 200 and sum(v > 0 for v in cells) >= 20
    # the first example is one the baseline gets right; the misclassified one follows, labelled so
    first = text.index("How far is this digit from each ideal?")
    wrong = text.index("A digit the baseline gets wrong")
    assert first < wrong
    assert "so the baseline classifies it right" in text[first:wrong]
    assert "is a 3; it is nearest to the ideal 7 by L1, so the baseline misclassifies it as 7" in text[wrong:]
    assert "misclassified as 7" in text[wrong:]  # the figure says so too
    requests, screenshot = _render(page, browser_page)
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    assert screenshot.std() > 20


def test_pick_examples_first_right_and_first_wrong(digits_factory):
    images, labels = digits_factory(6, (3, 7), seed=1)
    digits = Digits(torch.from_numpy(images), torch.tensor([0 if v == 3 else 1 for v in labels]), ("3", "7"))
    model = PixelSimilarity.fit(digits)
    right = (model.predict(digits.images) == digits.labels).tolist()
    assert all(right)  # the synthetic digits are easy
    flipped = Digits(digits.images, torch.cat([1 - digits.labels[:2], digits.labels[2:]]), digits.classes)
    assert pick_examples(model, flipped) == (2, 0)  # the first two are now "wrong"
    assert pick_examples(model, flipped, skip=0) == (2, 1)
    assert pick_examples(model, digits) == (0, None)
