"""Training and evaluation figures: Figures whose `.values` and drawn data match the recorder, metrics and
losses, and whose PNGs are real."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from digitlab.artifacts.card import Architecture, ModelCard
from digitlab.artifacts.metrics import accuracy_report
from digitlab.artifacts.serialization import load_model, save_model
from digitlab.data.digits import Digits
from digitlab.errors import DigitlabError
from digitlab.models import build_model
from digitlab.plots.evaluation import plot_confusion_matrix, plot_linear_weights, plot_top_losses
from digitlab.plots.training import is_constant, plot_loss_curves, plot_lr_find, plot_lr_schedule, plot_recorder_loss
from digitlab.predict.predictor import Predictor
from digitlab.train.callbacks import OneCycleCB, RecorderCB
from digitlab.train.dataloader import DataLoaders
from digitlab.train.learner import Learner
from digitlab.train.losses import batch_accuracy, mnist_loss

# the runs here validate on their training data on purpose (the figures, not generalisation, are tested)
pytestmark = pytest.mark.filterwarnings("ignore::digitlab.train.mentor.MentorWarning")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CLASSES = ("3", "7", "1")
PLAIN = {"scale": 1 / 255, "mean": 0.0, "std": 1.0}


def assert_png(path, size: tuple[int, int]) -> None:
    """A PNG file of `size` (width, height) pixels with something drawn on it."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        assert image.size == size
        gray = np.asarray(image.convert("L"), dtype=np.float64)
    assert gray.var() > 20  # a blank (all-white) canvas has variance 0


@pytest.fixture
def digits(digits_factory) -> tuple[torch.Tensor, torch.Tensor]:
    """(24, 28, 28) uint8 images and (24,) int64 labels indexing CLASSES."""
    images, labels = digits_factory(8, (3, 7, 1), seed=0)
    return torch.from_numpy(images), torch.tensor([CLASSES.index(str(v)) for v in labels])


@pytest.fixture
def recorder(digits_factory) -> RecorderCB:
    """A 3-epoch one-cycle fit of the book's linear 3-vs-7 model on 40 synthetic digits (milliseconds)."""
    torch.manual_seed(0)
    x, y = digits_factory(20, (3, 7), seed=0)
    xt = torch.as_tensor(x).float() / 255
    yt = (torch.as_tensor(y) == 3).float().unsqueeze(1)  # (N, 1), 1. for the first class
    dls = DataLoaders.from_tensors(xt, yt, xt, yt, batch_size=10, seed=0)
    rec = RecorderCB()
    Learner(dls, build_model("linear", 1), mnist_loss, lr=1.0, metrics=[batch_accuracy], cbs=[rec, OneCycleCB()]).fit(3)
    return rec


# ---- runs --------------------------------------------------------------------------------


def test_plot_loss_curves_from_a_real_run(recorder, tmp_path):
    fig = plot_loss_curves(recorder.history, path=tmp_path / "loss.png")
    curves = fig.values
    assert_png(tmp_path / "loss.png", (800, 300))
    assert curves["epoch"] == [1, 2, 3]
    for key in ("train_loss", "valid_loss", "batch_accuracy"):
        assert curves[key] == [row[key] for row in recorder.history]
    loss_ax, metric_ax = fig.axes
    assert [list(line.get_ydata()) for line in loss_ax.lines] == [curves["train_loss"], curves["valid_loss"]]
    assert list(metric_ax.lines[0].get_ydata()) == curves["batch_accuracy"]


def test_plot_recorder_loss_batches_and_epoch_ends(recorder, tmp_path):
    fig = plot_recorder_loss(recorder.losses, recorder.history, path=tmp_path / "rec.png")
    assert_png(tmp_path / "rec.png", (500, 300))
    (ax,) = fig.axes
    train, valid = ax.lines
    assert list(train.get_xdata()) == list(range(12))  # 3 epochs x 4 batches
    assert list(train.get_ydata()) == pytest.approx([float(v) for v in recorder.losses])
    assert list(valid.get_xdata()) == [3, 7, 11]  # the last batch of each epoch
    assert list(valid.get_ydata()) == [row["valid_loss"] for row in recorder.history]
    assert fig.values["epoch_end"] == [3, 7, 11] and fig.values["valid_loss"] == list(valid.get_ydata())
    # on the caller's axes: its figure comes back, two batches an epoch stated explicitly
    host = plot_loss_curves(recorder.history)
    assert plot_recorder_loss(recorder.losses[:6], recorder.history, 2, ax=host.axes[1]) is host
    assert list(host.axes[1].lines[-1].get_xdata()) == [1, 3, 5]
    with pytest.raises(DigitlabError, match="n_batches_per_epoch"):
        plot_recorder_loss(recorder.losses[:5], recorder.history)
    assert plot_recorder_loss(recorder.losses, []).values["valid_loss"] == []  # no epochs yet: the batches alone


def test_plot_loss_curves_without_metric_and_empty(tmp_path):
    history = [{"train_loss": 0.5, "valid_loss": 0.6}, {"train_loss": 0.3, "valid_loss": 0.4}]
    curves = plot_loss_curves(history, path=tmp_path / "loss.png").values
    assert_png(tmp_path / "loss.png", (800, 300))
    assert curves["epoch"] == [1, 2] and curves["batch_accuracy"] == []
    with pytest.raises(DigitlabError):
        plot_loss_curves([], path=tmp_path / "none.png")


def test_plot_lr_schedule_of_one_cycle(recorder, tmp_path):
    fig = plot_lr_schedule(recorder.lrs, path=tmp_path / "lrs.png")
    summary = fig.values
    assert_png(tmp_path / "lrs.png", (500, 300))
    assert list(fig.axes[0].lines[0].get_ydata()) == recorder.lrs
    assert not summary["constant"] and not is_constant(recorder.lrs)
    assert is_constant([0.1] * 5) and "constant lr 0.1" in plot_lr_schedule([0.1] * 5).axes[0].get_title()
    assert summary["n_batches"] == len(recorder.lrs) == 12  # 3 epochs x 4 batches
    assert summary["max_lr"] == max(recorder.lrs) and summary["max_at"] == recorder.lrs.index(max(recorder.lrs))
    assert summary["first_lr"] < summary["max_lr"] and summary["last_lr"] < summary["first_lr"]


def test_plot_lr_find_skips_exploded_losses(tmp_path):
    lrs = [1e-5 * 1.5**i for i in range(30)]
    losses = [torch.tensor(2.0 - 0.05 * i if i < 20 else 1.0 + (i - 20) ** 2) for i in range(30)]  # 0-dim, as recorded
    losses[-2], losses[-1] = torch.tensor(float("inf")), torch.tensor(float("nan"))
    fig = plot_lr_find(lrs, losses, suggestion=1e-3, path=tmp_path / "find.png")
    result = fig.values
    assert_png(tmp_path / "find.png", (500, 300))
    assert len(fig.axes[0].lines[0].get_xdata()) == 28 and fig.axes[0].get_xscale() == "log"
    assert result == {"min_loss": pytest.approx(1.0), "lr_at_min": pytest.approx(lrs[20]), "suggestion": 1e-3}
    with pytest.raises(DigitlabError):
        plot_lr_find(lrs, losses[:3], path=tmp_path / "bad.png")


# ---- evaluation --------------------------------------------------------------------------


def test_plot_confusion_matrix_accuracy(digits, tmp_path):
    images, labels = digits
    torch.manual_seed(1)
    predicted = build_model("linear", 3)(images.float() / 255).argmax(1)
    report = accuracy_report(predicted, labels, CLASSES)
    fig = plot_confusion_matrix(report["confusion"], CLASSES, path=tmp_path / "confusion.png")
    accuracy = fig.values["accuracy"]
    assert_png(tmp_path / "confusion.png", (300, 300))
    assert [int(t.get_text()) for t in fig.axes[0].texts] == np.array(report["confusion"]).flatten().tolist()
    matrix = np.array(report["confusion"])
    assert accuracy == pytest.approx(np.trace(matrix) / matrix.sum())
    assert accuracy == pytest.approx(report["accuracy"])
    with pytest.raises(DigitlabError):
        plot_confusion_matrix([[1, 2], [3, 4]], CLASSES, path=tmp_path / "bad.png")


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_top_losses_multiclass_are_cross_entropy_sorted(digits, tmp_path, smoothing):
    images, labels = digits
    torch.manual_seed(2)
    model = build_model("simple_net", 3, n_hidden=8)
    card = ModelCard(Architecture.of(model), CLASSES, False, PLAIN, config={"label_smoothing": smoothing})
    items = Predictor(model, card).top_losses(Digits(images, labels, CLASSES), k=9).items()
    assert len(items) == 9
    losses = [it["loss"] for it in items]
    assert losses == sorted(losses, reverse=True)
    with torch.no_grad():
        logits = model(images.float() / 255)
    per_item = F.cross_entropy(logits, labels, reduction="none", label_smoothing=smoothing)  # as it trained
    assert max(losses) == pytest.approx(float(per_item.max()), rel=1e-5)
    for it in items:
        i = it["index"]
        assert it["actual"] == int(labels[i]) and it["predicted"] == int(logits[i].argmax())
        assert it["loss"] == pytest.approx(float(per_item[i]), rel=1e-5)
        assert it["probability"] == pytest.approx(float(torch.softmax(logits[i], 0).max()), rel=1e-5)
    name = card.loss_name
    assert all(it["loss_name"] == name for it in items)
    assert name == ("cross_entropy (label smoothing 0.1)" if smoothing else "cross_entropy")
    fig = plot_top_losses(items, images, CLASSES, path=tmp_path / "top.png")
    titles = fig.values["titles"]
    assert name in fig.get_suptitle()
    assert_png(tmp_path / "top.png", (480, 540))  # 3 x 3 panels of 1.6 x 1.8 in
    first = items[0]
    assert titles[0] == (
        f"{CLASSES[first['predicted']]}/{CLASSES[first['actual']]}/{first['loss']:.2f}/{first['probability']:.2f}"
    )
    plot_top_losses(items[:5], images, CLASSES, path=tmp_path / "five.png")
    assert_png(tmp_path / "five.png", (480, 360))  # 3 columns, 2 rows, one hidden


def test_top_losses_binary_from_a_saved_model(digits, tmp_path):
    images, labels = digits
    keep = labels < 2  # the 3s and 7s
    images, labels = images[keep], labels[keep]
    torch.manual_seed(3)
    save_model(
        build_model("linear", 1), tmp_path / "model", {"classes": ["3", "7"], "binary": True, "normalization": PLAIN}
    )
    saved = load_model(tmp_path / "model")
    items = Predictor.from_saved(saved).top_losses(Digits(images, labels, ("3", "7")), k=len(labels)).items()
    with torch.no_grad():
        logit = saved.model(images.float() / 255)[:, 0]  # logit of "3"
    targets = (labels == 0).float().unsqueeze(1)  # (N, 1): 1. for a "3", as the model trained
    for it in items:
        i = it["index"]
        # the loss it trained with, one digit at a time: mnist_loss, in 0..1
        assert it["loss"] == pytest.approx(float(mnist_loss(logit[i : i + 1, None], targets[i : i + 1])), abs=1e-6)
        assert 0 <= it["loss"] <= 1 and it["loss_name"] == "mnist_loss"
        assert it["predicted"] == int(logit[i] <= 0)
        assert it["probability"] >= 0.5
    assert [it["loss"] for it in items] == sorted((it["loss"] for it in items), reverse=True)


def test_plot_linear_weights(tmp_path):
    model = build_model("linear", 3)
    fig = plot_linear_weights(model, CLASSES, path=tmp_path / "w3.png")
    assert fig.values["n_maps"] == 3
    assert_png(tmp_path / "w3.png", (600, 200))
    assert np.allclose(fig.axes[1].images[0].get_array(), model.linear.weight[1].detach().reshape(28, 28).numpy())
    assert plot_linear_weights(build_model("linear", 1), ("3", "7"), path=tmp_path / "w1.png").values["n_maps"] == 1
    assert_png(tmp_path / "w1.png", (200, 200))
    assert plot_linear_weights(torch.nn.Linear(28 * 28, 1), ("3", "7")).values["titles"] == ["3 (vs 7)"]  # the book's
    with pytest.raises(DigitlabError):
        plot_linear_weights(build_model("simple_net", 3), CLASSES, path=tmp_path / "no.png")
    with pytest.raises(DigitlabError):
        plot_linear_weights(build_model("linear", 4), CLASSES, path=tmp_path / "no.png")
    assert not (tmp_path / "no.png").exists()


def test_a_figure_that_fails_to_draw_writes_no_file(digits, tmp_path):
    images, _ = digits
    bad = [{"index": len(images), "actual": 0, "predicted": 1, "probability": 0.9, "loss": 2.3}]  # no such image
    with pytest.raises(IndexError):
        plot_top_losses(bad, images, CLASSES, path=tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
