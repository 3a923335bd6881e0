"""Pixel similarity: distances match PyTorch's losses; the classifier on whole batches."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from digitlab.baseline import PixelSimilarity, distance_table, ideal_digits, is_closer_to_first, mnist_distance
from digitlab.data.digits import Digits
from digitlab.errors import DigitlabError


def _random_images(n, seed=0):
    return torch.rand(n, 28, 28, generator=torch.Generator().manual_seed(seed))


def test_one_image_matches_l1_loss_and_rmse():
    a, b = _random_images(2)
    assert torch.allclose(mnist_distance(a, b), F.l1_loss(a, b))
    assert torch.allclose(mnist_distance(a, b, "rmse"), F.mse_loss(a, b).sqrt())


def test_batch_against_one_ideal_broadcasts_like_the_book():
    batch, ideal = _random_images(50), _random_images(1, seed=1)[0]
    got = mnist_distance(batch, ideal)
    assert got.shape == (50,)
    expected = torch.stack([F.l1_loss(x, ideal) for x in batch])
    assert torch.allclose(got, expected)
    rmse = torch.stack([F.mse_loss(x, ideal).sqrt() for x in batch])
    assert torch.allclose(mnist_distance(batch, ideal, "rmse"), rmse)


@pytest.mark.parametrize("metric", ["l1", "rmse"])
def test_stack_against_stack_is_a_table(metric):
    images, ideals = _random_images(3000), _random_images(10, seed=2)  # more than one chunk
    table = mnist_distance(images, ideals, metric)
    assert table.shape == (3000, 10)
    reference = mnist_distance(images[:, None], ideals[None], metric)  # (N, C) by plain broadcasting
    assert torch.allclose(table, reference, atol=1e-5)


def test_table_with_equal_counts_is_still_a_table():
    images = _random_images(4)
    assert mnist_distance(images, images).shape == (4, 4)
    assert torch.allclose(mnist_distance(images, images).diagonal(), torch.zeros(4), atol=1e-6)


def test_rmse_of_identical_images_is_zero_not_nan():
    images = (_random_images(5) * 255).round() / 255
    table = distance_table(images, images, "rmse")
    assert not table.isnan().any() and table.diagonal().abs().max() < 1e-3


def test_unknown_metric_and_size_mismatch():
    with pytest.raises(DigitlabError, match="unknown metric"):
        mnist_distance(_random_images(1)[0], _random_images(1)[0], "cosine")
    with pytest.raises(DigitlabError, match="does not match"):
        distance_table(torch.rand(2, 28, 28), torch.rand(2, 20, 20))


def test_ideal_digits_are_class_means(digits_factory):
    images, labels = digits_factory(10, classes=(3, 7))
    digits = Digits(torch.from_numpy(images), torch.from_numpy(labels // 7).long(), ("3", "7"))
    ideals = ideal_digits(digits)
    mean3 = torch.from_numpy(images[:10]).float().mean(0) / 255
    assert ideals.shape == (2, 28, 28) and torch.allclose(ideals[0], mean3, atol=1e-6)


def test_is_3_like_the_book(digits_factory):
    images, _labels = digits_factory(20, classes=(3, 7))
    floats = torch.from_numpy(images).float() / 255
    mean3, mean7 = floats[:20].mean(0), floats[20:].mean(0)
    is_3 = is_closer_to_first(floats, mean3, mean7)
    assert is_3[:20].all() and not is_3[20:].any()


@pytest.mark.parametrize("metric", ["l1", "rmse"])
def test_nearest_ideal_classifier_on_ten_classes(digits_factory, metric):
    images, labels = digits_factory(30, classes=tuple(range(10)))
    digits = Digits(torch.from_numpy(images), torch.from_numpy(labels).long(), tuple(map(str, range(10))))
    model = PixelSimilarity.fit(digits, metric)
    assert (model.predict(digits.images) == digits.labels).float().mean() > 0.95
    assert model.distances(digits.images).shape == (300, 10)
