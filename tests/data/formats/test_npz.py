"""load_npz: Keras mnist.npz in, Digits out; every malformed file is a one-line DataError."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from digitlab.data.formats.npz import load_npz
from digitlab.errors import DataError


def _arrays(n_train: int = 6, n_test: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),  # (N, 28, 28) uint8
        "y_train": np.array([3, 7] * (n_train // 2), dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": np.array([7, 3] * (n_test // 2), dtype=np.int64),
    }


def _save(tmp_path: Path, **arrays: np.ndarray) -> Path:
    path = tmp_path / "mnist.npz"
    np.savez(path, **arrays)
    return path


def _raises(path: Path, *needles: str) -> None:
    with pytest.raises(DataError) as err:
        load_npz(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    for needle in needles:
        assert needle in message, message


def test_happy_path_reindexes_labels(tmp_path: Path) -> None:
    arrays = _arrays()
    ds = load_npz(_save(tmp_path, **arrays))
    assert ds.name == "mnist" and ds.classes == ("3", "7")
    assert ds.provenance == {"source": "npz", "path": str(tmp_path / "mnist.npz")}
    assert ds.train.images.dtype == torch.uint8 and ds.train.labels.dtype == torch.int64
    assert ds.train.labels.tolist() == [0, 1, 0, 1, 0, 1]
    assert ds.valid is not None and ds.valid.labels.tolist() == [1, 0, 1, 0]
    assert np.array_equal(ds.valid.images.numpy(), arrays["x_test"])


def test_train_only_has_no_valid(tmp_path: Path) -> None:
    arrays = _arrays()
    ds = load_npz(_save(tmp_path, x_train=arrays["x_train"], y_train=arrays["y_train"]), name="tiny")
    assert ds.valid is None and ds.name == "tiny" and len(ds.train) == 6


def test_float_bytes_are_accepted(tmp_path: Path) -> None:
    arrays = _arrays()
    x = arrays["x_train"]
    arrays["x_train"] = (x / 255).astype(np.float32)
    ds = load_npz(_save(tmp_path, **arrays))
    assert np.array_equal(ds.train.images.numpy(), x)


def test_float_that_is_not_bytes_is_refused(tmp_path: Path) -> None:
    arrays = _arrays()
    arrays["x_train"] = np.full((6, 28, 28), 0.5001, dtype=np.float32)
    _raises(_save(tmp_path, **arrays), "x_train", "1/255")


def test_missing_key(tmp_path: Path) -> None:
    arrays = _arrays()
    del arrays["y_train"]
    _raises(_save(tmp_path, **arrays), "y_train")


def test_wrong_shape(tmp_path: Path) -> None:
    arrays = _arrays()
    arrays["x_train"] = arrays["x_train"].reshape(6, 784)
    _raises(_save(tmp_path, **arrays), "x_train", "(6, 784)")


def test_count_mismatch(tmp_path: Path) -> None:
    arrays = _arrays()
    arrays["y_test"] = arrays["y_test"][:3]
    _raises(_save(tmp_path, **arrays), "y_test", "3 labels", "4 images")


def test_labels_out_of_range(tmp_path: Path) -> None:
    arrays = _arrays()
    arrays["y_train"] = np.array([3, 7, 3, 7, 3, 300], dtype=np.int64)
    _raises(_save(tmp_path, **arrays), "y_train", "label 300 at index 5", "0..9")
    arrays["y_train"] = np.array([3, 7, 3, 200, 3, 7], dtype=np.uint8)  # a byte, yet not a digit
    _raises(_save(tmp_path, **arrays), "y_train", "label 200 at index 3")


def test_pickled_object_array_is_refused(tmp_path: Path) -> None:
    arrays = _arrays()
    arrays["x_train"] = np.array([{"boom": 1}] * 6, dtype=object)
    _raises(_save(tmp_path, **arrays), "pickled")


def test_corrupt_file(tmp_path: Path) -> None:
    path = _save(tmp_path, **_arrays())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _raises(path)


def test_plain_npy_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros((2, 28, 28), dtype=np.uint8))
    _raises(path, "not an .npz")  # a bare .npy is not a zip


def _npz_with_header(tmp_path: Path, shape: tuple[int, ...], data: bytes, dtype: str = "|u1") -> Path:
    """An npz whose x_train.npy header declares `shape` but holds only `data` (y_train is fine)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": shape})
    labels = io.BytesIO()
    np.save(labels, np.array([3, 7], dtype=np.uint8))
    path = tmp_path / "mnist.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("x_train.npy", header.getvalue() + data)
        zf.writestr("y_train.npy", labels.getvalue())
    return path


def test_a_header_declaring_2_to_the_31_images_is_refused_before_allocating(tmp_path: Path, peak_memory) -> None:
    path = _npz_with_header(tmp_path, (2**31, 28, 28), bytes(1000))
    with peak_memory() as peak:
        _raises(path, "x_train", "(2147483648, 28, 28)", "limit; refused")
    assert peak[0] < 2**20


def test_an_array_cut_short_is_truncated_not_pickled(tmp_path: Path) -> None:
    path = _npz_with_header(tmp_path, (2, 28, 28), bytes(700))
    with pytest.raises(DataError) as err:
        load_npz(path)
    message = str(err.value)
    assert str(path) in message and "truncated" in message and "pickle" not in message.lower()


def test_images_of_another_size_say_how_to_resize(tmp_path: Path) -> None:
    arrays = _arrays()
    arrays["x_train"] = np.zeros((6, 32, 32), dtype=np.uint8)
    _raises(_save(tmp_path, **arrays), "x_train", "32x32", "resize((28, 28))", "digitlab predict")
