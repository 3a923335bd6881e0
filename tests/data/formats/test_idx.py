"""IDX reading: header checks, gzip, the standard folder layouts, clear errors."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from digitlab.data.formats.idx import load_idx_folder, load_idx_pair, read_idx, write_idx
from digitlab.errors import DataError


def _write_pair(folder, prefix, images, labels, gz=True):
    ext = ".gz" if gz else ""
    write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels)


def test_round_trip_raw_and_gzip(tmp_path, digits_factory):
    images, _labels = digits_factory(5)
    for name in ("x-images-idx3-ubyte", "x-images-idx3-ubyte.gz"):
        write_idx(tmp_path / name, images)
        assert np.array_equal(read_idx(tmp_path / name, 3), images)
    assert (tmp_path / "x-images-idx3-ubyte.gz").read_bytes()[:2] == b"\x1f\x8b"


def test_header_is_big_endian_mnist_magic(tmp_path, digits_factory):
    images, _ = digits_factory(2)
    write_idx(tmp_path / "a", images)
    raw = (tmp_path / "a").read_bytes()
    assert raw[:4] == b"\x00\x00\x08\x03" and int.from_bytes(raw[4:8], "big") == 4
    assert len(raw) == 16 + 4 * 784


def test_pair_maps_labels_to_present_digits(tmp_path, digits_factory):
    images, labels = digits_factory(4, classes=(3, 7))
    _write_pair(tmp_path, "train", images, labels)
    digits = load_idx_pair(tmp_path / "train-images-idx3-ubyte.gz", tmp_path / "train-labels-idx1-ubyte.gz")
    assert digits.classes == ("3", "7")
    assert digits.labels.tolist() == [0] * 4 + [1] * 4
    assert digits.images.dtype.is_floating_point is False and tuple(digits.images.shape) == (8, 28, 28)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda raw: raw[:-100], "truncated"),
        (lambda raw: raw + b"\0", "trailing bytes"),
        (lambda raw: b"\x00\x00\x09\x03" + raw[4:], "wrong magic"),
        (lambda raw: raw[:10], "truncated"),
        (lambda raw: b"\x00\x00", "not an IDX file"),
    ],
)
def test_damaged_files_are_named_errors(tmp_path, digits_factory, damage, message):
    images, _ = digits_factory(3)
    path = tmp_path / "t10k-images-idx3-ubyte"
    write_idx(path, images)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataError, match=message) as info:
        read_idx(path, 3)
    assert str(path) in str(info.value)


def test_corrupt_gzip_is_a_named_error(tmp_path, digits_factory):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, digits_factory(3)[0])
    path.write_bytes(path.read_bytes()[:-100])  # cut inside the deflate stream
    with pytest.raises(DataError, match="cannot read") as info:
        read_idx(path, 3)
    assert path.name in str(info.value) and "\n" not in str(info.value)


def _gzip_bomb(path, dims: tuple[int, ...], gib: int = 3) -> None:
    """An IDX header declaring `dims`, then `gib` GiB of zeros: ~3 MB of gzip (1 KiB per MiB, members)."""
    header = bytes([0, 0, 8, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    member = gzip.compress(bytes(2**20), compresslevel=9, mtime=0)
    path.write_bytes(gzip.compress(header, mtime=0) + member * (1024 * gib))


def test_a_gzip_bomb_is_refused_with_one_line_and_little_memory(tmp_path, peak_memory):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    _gzip_bomb(path, (10, 28, 28))  # a modest header, then 3 GiB where 7,840 bytes belong
    assert 2_000_000 < path.stat().st_size < 4_000_000
    with peak_memory() as peak, pytest.raises(DataError, match="has trailing bytes") as info:
        read_idx(path, 3)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert peak[0] < 8 * 2**20  # the stream stops one byte past the declared size


@pytest.mark.parametrize("dims", [(2**31, 28, 28), (4_000_000, 28, 28)])
def test_a_header_declaring_too_much_is_refused_before_reading(tmp_path, dims, peak_memory):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    _gzip_bomb(path, dims)
    with peak_memory() as peak, pytest.raises(DataError, match=r"more than the 536,870,912 limit; refused") as info:
        read_idx(path, 3)
    assert str(path) in str(info.value) and peak[0] < 2**20


def test_a_header_declaring_more_than_the_file_can_hold_is_refused_before_allocating(tmp_path, peak_memory):
    raw, gz = tmp_path / "a-images-idx3-ubyte", tmp_path / "b-images-idx3-ubyte.gz"
    header = bytes([0, 0, 8, 3]) + struct.pack(">3I", 500_000, 28, 28)
    raw.write_bytes(header + bytes(100))
    gz.write_bytes(gzip.compress(header + bytes(100)))
    for path in (raw, gz):
        with peak_memory() as peak, pytest.raises(DataError, match="truncated") as info:
            read_idx(path, 3)
        assert str(path) in str(info.value) and peak[0] < 2**20


def test_labels_file_given_as_images_is_refused(tmp_path):
    write_idx(tmp_path / "l", np.zeros(5, np.uint8))
    with pytest.raises(DataError, match="1 dimensions, images need 3"):
        read_idx(tmp_path / "l", 3)


def test_count_mismatch_names_labels_file(tmp_path, digits_factory):
    images, labels = digits_factory(3)
    _write_pair(tmp_path, "train", images, labels[:-1])
    with pytest.raises(DataError, match="5 labels for 6 images"):
        load_idx_folder(tmp_path)


def test_wrong_image_size_is_refused_with_how_to_resize(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 32, 32), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([0, 1], np.uint8))
    with pytest.raises(DataError, match="32x32") as info:
        load_idx_folder(tmp_path)
    message = str(info.value)
    assert "train-images-idx3-ubyte" in message and "resize((28, 28))" in message and "digitlab predict" in message


def test_a_label_that_is_not_a_digit_is_refused(tmp_path, digits_factory):
    images, labels = digits_factory(3)
    labels[4] = 200
    _write_pair(tmp_path, "train", images, labels)
    with pytest.raises(DataError, match="label 200 at index 4 is not a digit") as info:
        load_idx_folder(tmp_path)
    assert "train-labels-idx1-ubyte.gz" in str(info.value)


def test_folder_with_train_and_test(tmp_path, digits_factory):
    images, labels = digits_factory(6, classes=tuple(range(10)))
    _write_pair(tmp_path, "train", images, labels)
    test_images, test_labels = digits_factory(2, classes=(0, 1, 2), seed=1)  # a test split lacking digits
    _write_pair(tmp_path, "t10k", test_images, test_labels, gz=False)
    dataset = load_idx_folder(tmp_path)
    assert dataset.classes == tuple(str(d) for d in range(10))
    assert len(dataset.train) == 60 and len(dataset.valid) == 6
    assert dataset.valid.classes == dataset.train.classes
    assert dataset.valid.counts()["2"] == 2 and dataset.valid.counts()["9"] == 0


def test_folder_with_only_test_pair_is_a_test_set(tmp_path, digits_factory):
    images, labels = digits_factory(3)
    _write_pair(tmp_path, "t10k", images, labels)
    dataset = load_idx_folder(tmp_path)
    assert dataset.valid is None and len(dataset.train) == 6
    assert dataset.provenance["splits"] == "test only"


def test_kaggle_dotted_names_are_found(tmp_path, digits_factory):
    images, labels = digits_factory(3)
    write_idx(tmp_path / "t10k-images.idx3-ubyte", images)
    write_idx(tmp_path / "t10k-labels.idx1-ubyte", labels)
    assert len(load_idx_folder(tmp_path).train) == 6


def test_half_pair_and_empty_folder_are_errors(tmp_path, digits_factory):
    with pytest.raises(DataError, match="no IDX files"):
        load_idx_folder(tmp_path)
    images, _ = digits_factory(3)
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    with pytest.raises(DataError, match="no train-labels"):
        load_idx_folder(tmp_path)


def test_single_class_is_refused(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 28, 28), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([4, 4, 4], np.uint8))
    with pytest.raises(DataError, match="at least 2 classes"):
        load_idx_folder(tmp_path)
