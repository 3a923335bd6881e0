"""Marks that are not digits (reading.marks), shown to the model as none of its classes (train.outliers),
and digits drawn with a thicker pen (train.augment.thicker)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from digitlab.artifacts.card import Normalization
from digitlab.artifacts.inference import probabilities, to_inputs
from digitlab.data.digits import Digits
from digitlab.errors import DigitlabError
from digitlab.reading.marks import DIGIT_LIKE, SHAPES, marks
from digitlab.train.augment import ThickerPenCB, thicker
from digitlab.train.callback import Callback
from digitlab.train.config import TrainConfig
from digitlab.train.dataloader import DataLoaders
from digitlab.train.learner import Learner
from digitlab.train.outliers import SHARE, OutlierExposureCB
from digitlab.train.recipe import build_learner, train


def test_marks_are_mnist_style_images_made_from_a_seed():
    a, b, c = marks(40, seed=1), marks(40, seed=1), marks(40, seed=2)
    assert a.shape == (40, 28, 28) and a.dtype == torch.uint8
    assert torch.equal(a, b) and not torch.equal(a, c)
    ink = a.float()
    assert (ink.flatten(1).max(1).values > 200).all()  # every mark has solid ink
    rows, cols = torch.arange(28.0)[:, None], torch.arange(28.0)[None]
    total = ink.sum((1, 2))
    centre_y, centre_x = (ink * rows).sum((1, 2)) / total, (ink * cols).sum((1, 2)) / total
    assert ((centre_y - 14).abs() < 1.5).all() and ((centre_x - 14).abs() < 1.5).all()  # MNIST's centring
    assert (ink[:, :3].sum((1, 2)) == 0).float().mean() > 0.9  # mostly within the 20 px box, as MNIST's


def test_no_mark_is_a_letter_drawn_like_a_digit():
    assert not DIGIT_LIKE & set(SHAPES)
    assert {"A", "E", "T", "X", "k", "m", "?", "#"} <= set(SHAPES)


class Taps(Callback):
    """(training, how many predictions the loss is given) for every batch."""

    order = 0

    def __init__(self) -> None:
        self.preds: list[tuple[bool, int]] = []

    def after_predict(self) -> None:
        self.preds.append((self.learn.training, len(self.learn.preds)))


def _learner(n: int = 40, bs: int = 8, cbs=()) -> Learner:
    torch.manual_seed(0)
    x = torch.randn(n, 1, 28, 28)
    y = torch.randint(0, 10, (n,))
    dls = DataLoaders.from_tensors(x, y, x[:16], y[:16], batch_size=bs, seed=0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
    return Learner(dls, model, F.cross_entropy, lr=0.01, cbs=cbs, default_cbs=False)


def test_the_marks_loss_is_added_and_the_digits_alone_are_scored():
    pool = torch.randn(30, 1, 28, 28)
    oe, taps = OutlierExposureCB(pool, weight=0.5, seed=3), Taps()
    learn = _learner(cbs=[oe, taps])
    seen = []

    def check(learn=learn):  # after the loss: recompute both terms from the marks' own outputs
        if learn.training:
            digits = F.cross_entropy(learn.preds, learn.batch[1])
            uniform = torch.full((len(oe.marks_preds), 10), 0.1)
            expected = digits + 0.5 * F.cross_entropy(oe.marks_preds, uniform)
            extra = len(learn.batch[0]) - len(learn.batch[1])  # marks in the inputs
            seen.append((float(learn.loss.detach()), float(expected.detach()), extra))

    class After(Callback):
        order = 1  # after OutlierExposureCB (-2) added its term

        def after_loss(self) -> None:
            check()

    learn.add_cbs([After()])
    learn.fit(1)
    assert all((training and n == 8) or (not training and n <= 16) for training, n in taps.preds)
    assert seen and all(abs(got - want) < 1e-5 and extra == 8 // SHARE for got, want, extra in seen)


def test_validation_batches_hold_no_marks():
    pool = torch.randn(30, 1, 28, 28)
    taps = Taps()
    learn = _learner(cbs=[OutlierExposureCB(pool, weight=1.0), taps])
    learn.fit(1)
    assert sum(n for training, n in taps.preds if not training) == 16  # the 16 validation digits, no more


def test_thicker_draws_the_chosen_digits_with_a_thicker_pen_only(digits_factory):
    images, _ = digits_factory(3)
    x = to_inputs(torch.from_numpy(images), Normalization(scale=1 / 255, mean=0.13, std=0.3))  # background < 0
    chosen = torch.tensor([True, False, True, False, True, False])
    wide = torch.tensor([True, True, False, False, True, False])
    out = thicker(x, chosen, wide)
    assert out.shape == x.shape
    ink = lambda t: (t > 0.5).flatten(1).sum(1)  # noqa: E731 (pixels of solid ink)
    assert (ink(out)[chosen] > ink(x)[chosen]).all()
    assert torch.equal(out[~chosen], x[~chosen])
    assert ink(out)[0] > ink(out)[2]  # 3x3 thickens more than 2x2 (the same kind of digit)


def test_thicker_pen_cb_changes_training_batches_only():
    taps = []

    class Tap(Callback):
        order = 0

        def before_batch(self) -> None:
            taps.append((self.learn.training, self.learn.batch[0].clone()))

    learn = _learner(cbs=[ThickerPenCB(1.0, seed=0), Tap()])
    x = learn.dls.valid.dataset[0]
    learn.fit(1)
    valid = [b for training, b in taps if not training]
    assert torch.equal(torch.cat(valid), x)
    assert all((b.sum() > 0) for training, b in taps if training)


def test_settings_are_checked_and_the_cnn_recipe_uses_marks():
    with pytest.raises(DigitlabError, match="--outliers must be between"):
        TrainConfig(model="cnn", outliers=-1.0)
    with pytest.raises(DigitlabError, match="--thicken must be between"):
        TrainConfig(model="cnn", thicken=1.5)
    cnn = TrainConfig(model="cnn").resolved(8000)
    assert cnn.outliers and cnn.outliers > 0 and cnn.thicken and cnn.thicken > 0
    book = TrainConfig(model="linear").resolved(8000)
    assert book.outliers == 0 and book.thicken == 0  # the book's models train as the book trains them


def _digits(n: int = 64) -> Digits:
    images, labels = marks(n, seed=9), torch.arange(n) % 2
    return Digits(images, labels, ("3", "7"))


def test_one_output_models_refuse_marks_in_one_line():
    config = TrainConfig(model="linear", epochs=1, outliers=0.5, threads=1)
    with pytest.raises(DigitlabError, match="one output per class"):
        build_learner(config, _digits(), _digits(16), progress=False)


def test_a_cnn_shown_marks_is_less_sure_of_marks_it_never_saw(offline_mnist):
    """Behaviour: the same CNN and digits, with and without the marks; their unseen marks' top probability."""
    dataset, _ = offline_mnist
    digits = Digits(dataset.train.images[:3000], dataset.train.labels[:3000], dataset.train.classes)
    valid = Digits(dataset.valid.images[:300], dataset.valid.labels[:300], dataset.valid.classes)
    unseen = marks(300, seed=12345)
    sure = {}
    for weight in (0.0, 1.0):
        config = TrainConfig(model="cnn", epochs=3, threads=1, outliers=weight, thicken=0.0, seed=0)
        result = train(config, digits, valid, progress=False)
        model = result.learner.model.eval()
        with torch.no_grad():
            outputs = model(to_inputs(unseen, result.normalization))
            digit_outputs = model(to_inputs(valid.images, result.normalization))
        sure[weight] = float(probabilities(outputs, False).max(1).values.mean())
        accuracy = float((digit_outputs.argmax(1) == valid.labels).float().mean())
        assert accuracy > 0.85, (weight, accuracy)
    assert sure[1.0] < sure[0.0] - 0.1, sure  # measured: 0.62 -> 0.28


def test_the_marks_are_drawn_once_per_seed_for_every_fit_of_a_process(monkeypatch):
    from digitlab.train import recipe

    drawn: list[int] = []
    monkeypatch.setattr(recipe, "marks", lambda n, seed: drawn.append(seed) or marks(64, seed=seed))
    recipe._marks_pool.cache_clear()
    ten = Digits(marks(40, seed=2), torch.arange(40) % 10, tuple("0123456789"))
    for seed in (5, 5, 6):  # --lr-find's trial and the fit after it build two learners of one seed
        config = TrainConfig(model="cnn", epochs=1, seed=seed, outliers=0.1, threads=1)
        build_learner(config, ten, ten, progress=False)
    recipe._marks_pool.cache_clear()  # the other tests draw the real pool
    assert drawn == [5, 6]
