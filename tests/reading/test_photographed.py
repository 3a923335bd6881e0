"""Training digits photographed and found again (`digitlab.reading.photographed`, `train --photos`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from digitlab.data.digits import Digits
from digitlab.errors import DigitlabError
from digitlab.reading.photographed import photo_of, photographed, with_photos
from digitlab.reading.segment import find_digits
from digitlab.train.config import TrainConfig
from digitlab.train.recipe import build_learner


@pytest.fixture(scope="module")
def mirror_digits(offline_mnist) -> Digits:
    return _spread(offline_mnist, 24)


def _spread(offline_mnist, n: int) -> Digits:
    """n of the mirror's training digits drawn at random (the mirror holds them class by class)."""
    dataset, _ = offline_mnist
    chosen = torch.randperm(len(dataset.train), generator=torch.Generator().manual_seed(0))[:n]
    return Digits(dataset.train.images[chosen], dataset.train.labels[chosen], dataset.train.classes)


def _correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(np.corrcoef(a.float().flatten().numpy(), b.float().flatten().numpy())[0, 1])


def test_a_photo_is_dark_ink_on_lighter_paper_around_the_digit(mirror_digits):
    photo = photo_of(mirror_digits.images[0].numpy(), np.random.default_rng(0))
    gray = np.asarray(photo.convert("L"), np.float32)
    assert photo.mode == "RGB" and min(gray.shape) > 50  # the digit drawn large, with margins
    assert np.percentile(gray, 50) - gray.min() > 60  # most of it paper, the ink much darker
    assert len(find_digits(photo, cut_lone=False)) == 1


def test_the_crops_are_the_digits_again_softened_by_the_photo(mirror_digits):
    crops, kept = photographed(mirror_digits.images, seed=3)
    assert crops.dtype == torch.uint8 and crops.shape == (len(kept), 28, 28)
    assert len(kept) >= 0.8 * len(mirror_digits)  # a few in pieces or too faint may be left out
    originals = mirror_digits.images[kept]
    # each crop is its own digit (centred as MNIST's are), more like it than like the others
    own = [_correlation(c, o) for c, o in zip(crops, originals)]
    others = [_correlation(c, o) for c, o in zip(crops, originals.roll(1, 0))]
    assert np.median(own) > 0.6 and np.median(own) > np.median(others) + 0.3
    assert (crops > 0).float().mean() > (originals > 0).float().mean()  # blur and the threshold widen strokes
    again, kept_again = photographed(mirror_digits.images, seed=3)
    assert torch.equal(again, crops) and torch.equal(kept_again, kept)  # a seed draws the same photos


def test_threads_photograph_the_same_crops_in_the_same_order(offline_mnist, monkeypatch):
    monkeypatch.setattr("digitlab.reading.photographed.CHUNK", 5)  # several chunks from a few digits
    digits = _spread(offline_mnist, 23).images
    progress: list[tuple[int, int | None]] = []
    monkeypatch.setattr("digitlab.reading.photographed.PROGRESS_EVERY", 10)
    alone = photographed(digits, seed=4)
    crops, kept = photographed(
        digits, seed=4, threads=3, on_progress=lambda done, total: progress.append((done, total))
    )
    assert torch.equal(crops, alone[0]) and torch.equal(kept, alone[1])
    assert kept.tolist() == sorted(kept.tolist()) and len(kept) > 15
    assert progress == [(10, 23), (20, 23)]  # in order, the last chunk's end (the whole) not said
    other = photographed(digits, seed=5, threads=2)
    assert not (len(other[1]) == len(kept) and torch.equal(other[0], crops))  # another seed, other photos


def test_with_photos_appends_labelled_crops_of_a_share_of_the_digits(mirror_digits):
    said: list[str] = []
    more = with_photos(mirror_digits, 0.5, seed=0, say=said.append)
    n = len(mirror_digits)
    assert torch.equal(more.images[:n], mirror_digits.images) and torch.equal(more.labels[:n], mirror_digits.labels)
    added = len(more) - n
    assert 0.8 * n / 2 <= added <= n / 2 and more.classes == mirror_digits.classes
    # each crop carries the label of the digit it shows: the nearest original is of its class
    for crop, label in zip(more.images[n:], more.labels[n:]):
        nearest = max(range(n), key=lambda j: _correlation(crop, mirror_digits.images[j]))
        assert mirror_digits.labels[nearest] == label
    assert len(set(more.labels[n:].tolist())) > 3  # digits of several classes
    assert said == []  # progress every 1,000 digits: none for 12


def test_training_with_photos_learns_from_the_digits_and_their_crops(mirror_digits):
    config = TrainConfig(model="cnn", epochs=1, photos=0.25, outliers=0.0, thicken=0.0, threads=1)
    learn = build_learner(config, mirror_digits, mirror_digits, progress=False).learn
    n_train = len(learn.dls.train.dataset[1])
    assert len(mirror_digits) < n_train <= len(mirror_digits) * 1.25
    plain = build_learner(TrainConfig(model="cnn", epochs=1, outliers=0.0, thicken=0.0, threads=1), mirror_digits,
                          mirror_digits, progress=False).learn  # fmt: skip
    assert len(plain.dls.train.dataset[1]) == len(mirror_digits)


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan")])
def test_a_share_of_photos_outside_0_to_1_is_refused(share):
    with pytest.raises(DigitlabError, match="--photos must be between 0 and 1"):
        TrainConfig(model="cnn", photos=share)


def _digit_folder(root, digits: Digits) -> None:
    from PIL import Image

    for i, (image, label) in enumerate(zip(digits.images, digits.labels)):
        folder = root / digits.classes[int(label)]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.numpy()).save(folder / f"{i}.png")


def test_train_photos_says_what_it_adds_and_the_card_keeps_it(tmp_path, offline_mnist, capsys):
    from digitlab.artifacts.serialization import load_model
    from digitlab.cli import main

    _digit_folder(tmp_path / "digits", _spread(offline_mnist, 60))
    args = ["--model", "cnn", "--epochs", "1", "--threads", "1", "--outliers", "0", "--thicken", "0"]
    code = main(["train", "--data", str(tmp_path / "digits"), "--out", str(tmp_path / "run"), *args, "--photos", "0.5"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "50% of the digits also photographed (--photos 0.5)" in err
    assert "photographing 24 training digits" in err  # half of the 48 left after the 20% holdout
    assert load_model(tmp_path / "run").card.config["photos"] == 0.5


def test_a_line_reader_refuses_photos_in_one_line(tmp_path, capsys):
    from digitlab.cli import main

    code = main(["train", "--model", "line-reader", "--data", "mnist", "--photos", "0.2", "--out", str(tmp_path / "r")])
    assert code == 2 and "--photos: not for a line-reader" in capsys.readouterr().err


def test_the_same_digits_are_photographed_once_for_two_learners_on_them(mirror_digits, monkeypatch):
    import digitlab.train.recipe as recipe

    calls: list[int] = []

    def counted(digits: Digits, share: float, seed: int, say=None, threads: int = 1) -> Digits:
        calls.append(len(digits))
        assert threads == 1  # --threads 1: photographed on one thread too
        return with_photos(digits, share, seed, say, threads)

    monkeypatch.setattr(recipe, "with_photos", counted)
    config = TrainConfig(model="cnn", epochs=1, photos=0.25, outliers=0.0, thicken=0.0, threads=1)
    first = build_learner(config, mirror_digits, mirror_digits, progress=False).learn  # a learner to look at
    again = build_learner(config, mirror_digits, mirror_digits, progress=False).learn  # then the one to fit
    assert calls == [len(mirror_digits)]
    assert torch.equal(first.dls.train.dataset[1], again.dls.train.dataset[1])
    other = Digits(mirror_digits.images.clone(), mirror_digits.labels, mirror_digits.classes)  # other digits
    build_learner(config, other, mirror_digits, progress=False)
    half = TrainConfig(model="cnn", epochs=1, photos=0.5, outliers=0.0, thicken=0.0, threads=1)
    build_learner(half, other, mirror_digits, progress=False)
    assert len(calls) == 3
    relabelled = Digits(other.images, other.labels.flip(0), other.classes)  # the same images, other labels
    build_learner(half, relabelled, mirror_digits, progress=False)
    assert len(calls) == 4


@pytest.mark.parametrize("quiet", [False, True])
def test_lr_find_with_photos_says_it_photographs_unless_quiet(tmp_path, offline_mnist, capsys, quiet):
    import json

    from digitlab.cli import main

    _digit_folder(tmp_path / "digits", _spread(offline_mnist, 40))
    args = ["train", "--data", str(tmp_path / "digits"), "--model", "cnn", "--lr-find", "--photos", "0.5", "--json"]
    assert main([*args, *(["--quiet"] if quiet else []), "--threads", "1"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["suggestion"] > 0  # stdout: the finder's result alone
    assert ("photographing 16 training digits" in captured.err) is not quiet  # half of the 32 left after the holdout
    assert "epoch" not in captured.err.lower()  # no fit's progress: the finder's trial is not a fit
