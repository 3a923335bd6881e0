"""The Digits container: validation, class filtering, deterministic stratified holdout."""

from __future__ import annotations

import pytest
import torch

from digitlab.data.digits import DigitDataset, Digits, concat, stratified_holdout, with_holdout
from digitlab.errors import DataError


def _digits(counts: dict[str, int]) -> Digits:
    labels = torch.cat([torch.full((n,), i) for i, n in enumerate(counts.values())]).long()
    images = torch.randint(0, 256, (len(labels), 28, 28), dtype=torch.uint8)
    return Digits(images, labels, tuple(counts))


def test_rejects_wrong_dtypes_and_labels():
    with pytest.raises(DataError, match="uint8"):
        Digits(torch.zeros(2, 28, 28), torch.zeros(2, dtype=torch.long), ("a",))
    with pytest.raises(DataError, match="labels must lie"):
        Digits(torch.zeros(2, 28, 28, dtype=torch.uint8), torch.tensor([0, 5]), ("a", "b"))


def test_with_classes_keeps_known_classes_and_relabels():
    ten = _digits({str(d): 3 for d in range(10)})
    reduced = ten.with_classes(("3", "7"))
    assert reduced.classes == ("3", "7") and len(reduced) == 6
    assert reduced.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert torch.equal(reduced.images[0], ten.images[9])
    with pytest.raises(DataError, match="none of the classes"):
        ten.with_classes(("x",))


def test_stratified_holdout_is_deterministic_and_proportional():
    digits = _digits({"3": 100, "7": 50})
    train, valid = stratified_holdout(digits, 0.2, seed=0)
    assert valid.counts() == {"3": 20, "7": 10} and train.counts() == {"3": 80, "7": 40}
    _train2, valid2 = stratified_holdout(digits, 0.2, seed=0)
    assert torch.equal(valid.images, valid2.images)
    _, valid3 = stratified_holdout(digits, 0.2, seed=1)
    assert not torch.equal(valid.images, valid3.images)


def test_holdout_is_given_back_for_external_validation():
    digits = _digits({"3": 10, "7": 10})
    dataset = with_holdout(DigitDataset("x", digits, None))
    assert dataset.valid_is_holdout and len(dataset.train) == 16
    assert len(dataset.all_training_data()) == 20
    published = DigitDataset("y", digits, digits)  # a real valid split is never trained on
    assert len(published.all_training_data()) == 20 and with_holdout(published) is published


def test_concat_needs_same_classes():
    with pytest.raises(DataError, match="different classes"):
        concat([_digits({"3": 1, "7": 1}), _digits({"1": 1, "2": 1})])
