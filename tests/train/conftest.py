"""Fixtures shared by the training tests."""

from __future__ import annotations

import pytest
import torch

from digitlab.data.digits import Digits


@pytest.fixture
def make_digits(digits_factory):
    """`make_digits(n_per_class, classes=(3, 7), seed=0)`: synthetic stroke digits as a `Digits` split."""

    def make(n_per_class: int, classes: tuple[int, ...] = (3, 7), seed: int = 0) -> Digits:
        images, labels = digits_factory(n_per_class, classes, seed)
        index = torch.tensor([classes.index(int(label)) for label in labels], dtype=torch.int64)
        return Digits(torch.as_tensor(images), index, tuple(str(c) for c in classes))

    return make
