"""The decoded-dataset cache: round trip, no pickles, stale or corrupt entries never served."""

from __future__ import annotations

import os

import pytest
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


def test_cached_builds_once_then_serves_the_entry(tmp_path):
    built: list[DigitDataset] = []
    heard: list[str] = []

    def build() -> DigitDataset:
        built.append(_dataset(True))
        return built[-1]

    assert not cache.has(tmp_path, "k")
    first = cache.cached(tmp_path, "k", build, heard.append, name="sample")
    assert first is built[0] and heard == []  # a miss: built, stored, said nothing (the builder reports)
    assert cache.has(tmp_path, "k") and not cache.has(tmp_path, "other")
    again = cache.cached(tmp_path, "k", build, heard.append, name="sample")
    assert len(built) == 1 and heard == ["sample: decoded from cache"]
    assert again.summary() == first.summary() and torch.equal(again.valid.images, first.valid.images)
    assert cache.cached(tmp_path, "k", build).summary() == first.summary()  # no log: silent hit


def test_cached_rebuilds_a_damaged_entry(tmp_path):
    calls = []

    def build() -> DigitDataset:
        calls.append(1)
        return _dataset(False)

    cache.cached(tmp_path, "k", build)
    entry = next((tmp_path / "decoded").glob("k*.npz"))
    entry.write_bytes(b"not a zip")
    assert cache.has(tmp_path, "k")  # there, though unreadable
    rebuilt = cache.cached(tmp_path, "k", build)
    assert len(calls) == 2 and rebuilt.summary() == _dataset(False).summary()
    assert cache.load_cached(tmp_path, "k") is not None  # stored again, readable


def test_a_failed_build_stores_nothing(tmp_path):
    def build() -> DigitDataset:
        raise ValueError("cannot decode")

    with pytest.raises(ValueError, match="cannot decode"):
        cache.cached(tmp_path, "k", build)
    assert not cache.has(tmp_path, "k")
