"""Lines of digits made from single digits: shapes, labels, gaps, seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from digitlab.data.lines import LINE_HEIGHT, LINE_WIDTH, PAD, LineBatches, ink_crop, make_line, make_lines


def _digits(n: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Bars of different widths and places, labels 0..9: enough ink to crop and scale."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), np.uint8)
    labels = rng.integers(0, 10, n)
    for image, label in zip(images, labels):
        image[4:24, 8 + label : 12 + label] = 255
    return images, labels


def test_a_line_holds_the_digits_it_names_left_to_right():
    images, labels = _digits()
    picture, drawn = make_line(images, labels, np.random.default_rng(1), 4, (0.3, 0.5))
    assert picture.shape == (LINE_HEIGHT, LINE_WIDTH) and picture.dtype == np.uint8
    assert len(drawn) == 4 and all(0 <= d <= 9 for d in drawn)
    ink_columns = picture.max(axis=0) > 0
    runs = np.count_nonzero(np.diff(ink_columns.astype(int)) == 1) + int(ink_columns[0])
    assert runs == 4  # spaced: four separate marks


def test_overlapping_gaps_make_touching_digits():
    images, labels = _digits()
    picture, drawn = make_line(images, labels, np.random.default_rng(2), 4, (-0.2, -0.1))
    ink_columns = np.nonzero(picture.max(axis=0) > 0)[0]
    assert len(drawn) == 4 and np.all(np.diff(ink_columns) == 1)  # one run of ink: they touch


def test_batches_pad_labels_and_are_the_same_for_a_seed():
    images, labels = _digits()
    x, y = make_lines(images, labels, np.random.default_rng(3), 8, lengths=(2, 6))
    assert x.shape == (8, 1, LINE_HEIGHT, LINE_WIDTH) and x.dtype == torch.float32 and x.min() >= 0 and x.max() <= 1
    lengths = (y != PAD).sum(1)
    assert y.shape[1] == lengths.max() and lengths.min() >= 2 and lengths.max() <= 5
    assert all((row[n:] == PAD).all() and (row[:n] >= 0).all() for row, n in zip(y, lengths.tolist()))
    again = make_lines(images, labels, np.random.default_rng(3), 8, lengths=(2, 6))
    assert torch.equal(x, again[0]) and torch.equal(y, again[1])


def test_training_batches_change_every_epoch_and_validation_batches_do_not():
    images, labels = _digits()
    train = LineBatches(images, labels, n_batches=2, bs=4, seed=0)
    first, second = list(train), list(train)
    assert len(train) == 2 and len(first) == 2
    assert not torch.equal(first[0][0], second[0][0])
    valid = LineBatches(images, labels, n_batches=2, bs=4, seed=0, fresh=False)
    assert torch.equal(next(iter(valid))[0], next(iter(valid))[0])


def test_an_empty_digit_is_kept_whole():
    assert ink_crop(np.zeros((28, 28), np.uint8)).shape == (28, 28)


@pytest.mark.parametrize("gaps", [(0.08, 0.6), (-0.1, 0.03)])
def test_lines_never_spill_past_their_width(gaps):
    images, labels = _digits()
    rng = np.random.default_rng(4)
    for _ in range(20):
        picture, drawn = make_line(images, labels, rng, 60, gaps)  # more than fit: those that fit
        assert 1 <= len(drawn) < 60 and picture.shape == (LINE_HEIGHT, LINE_WIDTH)
