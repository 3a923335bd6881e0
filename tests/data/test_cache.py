"""The decoded-dataset cache: round trip, no pickles, stale or corrupt entries never served."""

from __future__ import annotations

import os

import torch

from digitlab.data import cache
from digitlab.data.digits import DigitDataset, Digits


def _dataset(with_valid: bool) -> DigitDataset:
    images = torch.randint(0, 256, (6, 28, 28), dtype=torch.uint8)
    digits = Digits(images, torch.tensor([0, 1, 0, 1, 0, 1]), ("3", "7"))
    return DigitDataset(
        "x",
        digits,
        digits.subset(torch.arange(2)) if with_valid else None,
        {"source": "folder", "path": "/somewhere"},
        valid_is_holdout=with_valid,
    )


def test_round_trip_with_and_without_valid(tmp_path):
    for with_valid in (True, False):
        original = _dataset(with_valid)
        cache.store(tmp_path, f"k{with_valid}", original)
        loaded = cache.load_cached(tmp_path, f"k{with_valid}")
        assert loaded.summary() == original.summary()
        assert torch.equal(loaded.train.images, original.train.images)


def test_missing_or_corrupt_entries_are_ignored(tmp_path):
    assert cache.load_cached(tmp_path, "nothing") is None
    cache.store(tmp_path, "k", _dataset(False))
    entry = next((tmp_path / "decoded").glob("k*.npz"))
    entry.write_bytes(entry.read_bytes()[:100])
    assert cache.load_cached(tmp_path, "k") is None
    assert not list((tmp_path / "decoded").glob("*.tmp"))


def test_folder_fingerprint_changes_with_any_edit(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "1.png").write_bytes(b"one")
    first = cache.folder_fingerprint(tmp_path)
    assert cache.folder_fingerprint(tmp_path) == first
    (tmp_path / "a" / "1.png").write_bytes(b"two")
    os.utime(tmp_path / "a" / "1.png", ns=(1, 1))
    second = cache.folder_fingerprint(tmp_path)
    assert second != first
    (tmp_path / "a" / "1.png").rename(tmp_path / "a" / "2.png")
    assert cache.folder_fingerprint(tmp_path) != second
