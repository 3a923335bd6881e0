"""The decoded-dataset cache: round trip, no pickles, stale, corrupt or tampered entries never served."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
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
    heard: list[str] = []
    assert cache.load_cached(tmp_path, "k", heard.append) is None
    assert not list((tmp_path / "decoded").glob("*.tmp"))
    assert len(heard) == 1 and str(entry) in heard[0] and "deleted" in heard[0] and not entry.exists()


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
    third = cache.folder_fingerprint(tmp_path)
    assert third != second
    (tmp_path / "b").mkdir()  # an empty class folder is refused by the loader: it must not hit the cache
    assert cache.folder_fingerprint(tmp_path) != third


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


def _rebuilding(tmp_path, damage) -> tuple[list[str], list[int], DigitDataset]:
    """Store an entry, damage it with `damage(entry)`, then load through `cached`: (heard, builds, served)."""
    builds: list[int] = []

    def build() -> DigitDataset:
        builds.append(1)
        return _dataset(True)

    cache.cached(tmp_path, "k", build)
    entry = next((tmp_path / "decoded").glob("k*.npz"))
    damage(entry)
    heard: list[str] = []
    served = cache.cached(tmp_path, "k", build, warn=heard.append)
    return heard, builds, served


def _one_line_naming_the_entry(heard: list[str], tmp_path, reason: str) -> None:
    assert len(heard) == 1 and "\n" not in heard[0], heard
    entry = next((tmp_path / "decoded").glob("k*.npz"))
    assert heard[0].startswith(f"{entry}: damaged cache entry") and reason in heard[0], heard
    assert heard[0].endswith("deleted, rebuilding")


def test_a_zero_byte_entry_is_named_deleted_and_rebuilt(tmp_path):
    heard, builds, served = _rebuilding(tmp_path, lambda entry: entry.write_bytes(b""))
    _one_line_naming_the_entry(heard, tmp_path, "0 bytes")
    assert len(builds) == 2 and served.summary() == _dataset(True).summary()
    assert cache.load_cached(tmp_path, "k", heard.append) is not None and len(heard) == 1  # stored again, whole


def test_an_unreadable_entry_is_named_deleted_and_rebuilt(tmp_path):
    heard, builds, _ = _rebuilding(tmp_path, lambda entry: entry.write_bytes(b"PK\x03\x04 not really a zip"))
    _one_line_naming_the_entry(heard, tmp_path, "unreadable")
    assert len(builds) == 2


def test_a_folder_in_place_of_an_entry_is_removed_and_rebuilt(tmp_path):
    def make_folder(entry):
        entry.unlink()
        (entry / "junk").mkdir(parents=True)

    heard, builds, _ = _rebuilding(tmp_path, make_folder)
    _one_line_naming_the_entry(heard, tmp_path, "unreadable")
    assert len(builds) == 2 and next((tmp_path / "decoded").glob("k*.npz")).is_file()


def _rewrite(entry, edit) -> None:
    """Rewrite a still-valid npz entry with `edit(arrays, meta)` applied: what a tamperer would do."""
    with np.load(entry, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    meta = json.loads(str(arrays.pop("meta")))
    edit(arrays, meta)
    with open(entry, "wb") as f:
        np.savez(f, meta=np.array(json.dumps(meta)), **arrays)


def test_a_tampered_entry_with_labels_swapped_is_never_served(tmp_path):
    def swap(arrays, meta):
        arrays["train_labels"] = 1 - arrays["train_labels"]  # still 0/1, still a valid dataset

    original = _dataset(True)
    heard, builds, served = _rebuilding(tmp_path, lambda entry: _rewrite(entry, swap))
    _one_line_naming_the_entry(heard, tmp_path, "content sha256")
    assert len(builds) == 2
    assert served.summary() == original.summary()


def test_tampered_metadata_or_an_entry_without_a_hash_is_rebuilt(tmp_path):
    def rename(arrays, meta):
        meta["name"] = "someone else"

    heard, builds, _ = _rebuilding(tmp_path, lambda entry: _rewrite(entry, rename))
    _one_line_naming_the_entry(heard, tmp_path, "content sha256")
    assert len(builds) == 2

    def unhash(arrays, meta):
        del meta["sha256"]

    heard, builds, _ = _rebuilding(tmp_path / "other", lambda entry: _rewrite(entry, unhash))
    _one_line_naming_the_entry(heard, tmp_path / "other", "no content hash")
    assert len(builds) == 2


def test_store_fsyncs_the_file_then_renames_then_fsyncs_the_folder(tmp_path, monkeypatch):
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(cache.os, "fsync", fsync)
    monkeypatch.setattr(cache.os, "replace", replace)
    cache.store(tmp_path, "k", _dataset(False))
    assert events == ["fsync file", "rename", "fsync folder"]


def test_store_removes_temporary_files_of_dead_writers(tmp_path):
    folder = tmp_path / "decoded"
    folder.mkdir()
    old, fresh = folder / "dead.tmp", folder / "busy.tmp"
    old.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(old, (1, 1))
    cache.store(tmp_path, "k", _dataset(False))
    assert not old.exists() and fresh.exists()  # a fresh one may belong to a writer still at work
