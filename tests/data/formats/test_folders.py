"""load_image_folder on the three layouts, and one-line DataErrors for every bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from digitlab.data.formats.folders import load_image_folder
from digitlab.errors import DataError


def _png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _digit(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (28, 28), dtype=np.uint8)  # (28, 28) uint8


def _split(folder: Path, per_class: dict[str, int], seed: int = 0) -> None:
    for label, n in per_class.items():
        for i in range(n):
            _png(folder / label / f"{i:03d}.png", _digit(seed + 100 * int(label) + i))


def _raises(root: Path, *needles: str) -> str:
    with pytest.raises(DataError) as err:
        load_image_folder(root)
    message = str(err.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


def test_train_valid_layout_in_wrapper_like_mnist_tiny(tmp_path: Path) -> None:
    root = tmp_path / "download"
    inner = root / "mnist_tiny"
    _split(inner / "train", {"3": 3, "7": 2})
    _split(inner / "valid", {"3": 1, "7": 2}, seed=50)
    _png(inner / "test" / "unlabeled.png", _digit(9))  # unlabeled test/: ignored
    (inner / "labels.csv").write_text("name,label\ntrain/3/000.png,3\n")  # top-level file: ignored
    (root / ".DS_Store").write_text("junk")  # hidden beside the wrapper: still descends
    ds = load_image_folder(root)
    assert ds.name == "download" and ds.classes == ("3", "7")
    assert ds.provenance == {"source": "folder", "path": str(root), "layout": "train/valid"}
    assert ds.train.images.dtype == torch.uint8 and ds.train.images.shape == (5, 28, 28)
    assert ds.train.labels.dtype == torch.int64 and ds.train.labels.tolist() == [0, 0, 0, 1, 1]
    assert ds.valid is not None and ds.valid.labels.tolist() == [0, 1, 1]
    assert np.array_equal(ds.train.images[3].numpy(), _digit(700))  # exact pixels, sorted file order
    assert np.array_equal(ds.valid.images[0].numpy(), _digit(50 + 300))


def test_training_testing_layout_like_mnist_png(tmp_path: Path) -> None:
    root = tmp_path / "mnist_png"
    _split(root / "mnist_png" / "training", {"0": 2, "2": 1, "10": 1})
    _split(root / "mnist_png" / "testing", {"2": 1, "10": 2})  # class 0 missing from valid: fine
    ds = load_image_folder(root, name="pngs")
    assert ds.name == "pngs" and ds.classes == ("0", "2", "10")  # numeric, not "10" < "2"
    assert ds.provenance["layout"] == "training/testing"
    assert ds.valid is not None and ds.valid.counts() == {"0": 0, "2": 1, "10": 2}


def test_labels_layout_is_one_split(tmp_path: Path) -> None:
    root = tmp_path / "wrap"
    _split(root / "digits", {"3": 2, "7": 2})
    (root / "digits" / "3" / "Thumbs.db").write_bytes(b"\x00junk")  # skipped
    (root / "digits" / "7" / ".hidden.png").write_bytes(b"junk")  # skipped
    ds = load_image_folder(root)
    assert ds.valid is None and len(ds.train) == 4 and ds.provenance["layout"] == "labels"


def test_rgb_and_palette_are_converted_to_grayscale(tmp_path: Path) -> None:
    rgb = np.zeros((28, 28, 3), dtype=np.uint8)
    rgb[0, 0] = (200, 200, 200)
    rgb[0, 1] = (255, 0, 0)  # ITU-R 601 luma: 255 * 299/1000 = 76
    Image.fromarray(rgb, "RGB").save(_mkdir(tmp_path / "d" / "3") / "rgb.png")
    Image.fromarray(_digit(1)).convert("P").save(_mkdir(tmp_path / "d" / "7") / "pal.png")
    ds = load_image_folder(tmp_path / "d")
    assert ds.train.images[0, 0, 0] == 200 and ds.train.images[0, 0, 1] == 76
    assert ds.train.images.shape == (2, 28, 28)


def test_progress_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import digitlab.data.formats.folders as folders

    monkeypatch.setattr(folders, "PROGRESS_EVERY", 2)
    _split(tmp_path / "d", {"3": 3, "7": 2})
    calls: list[tuple[int, int]] = []
    load_image_folder(tmp_path / "d", on_progress=lambda done, total: calls.append((done, total)))
    assert calls == [(2, 5), (4, 5), (5, 5)]


def test_wrong_size_image_is_named(tmp_path: Path) -> None:
    _split(tmp_path / "d", {"3": 1, "7": 1})
    _png(tmp_path / "d" / "7" / "wide.png", np.zeros((28, 27), dtype=np.uint8))  # 27 wide, 28 high
    _raises(tmp_path / "d", "wide.png", "27x28", "resize((28, 28))", "digitlab predict")


def test_non_image_file_is_named(tmp_path: Path) -> None:
    _split(tmp_path / "d", {"3": 1, "7": 1})
    (tmp_path / "d" / "3" / "notes.txt").write_text("not a digit")
    _raises(tmp_path / "d", "notes.txt", "not an image")


def test_truncated_png_is_named(tmp_path: Path) -> None:
    _split(tmp_path / "d", {"3": 1, "7": 1})
    good = tmp_path / "d" / "7" / "000.png"
    data = good.read_bytes()
    (tmp_path / "d" / "7" / "cut.png").write_bytes(data[: len(data) // 2])
    _raises(tmp_path / "d", "cut.png")


def test_empty_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _raises(tmp_path / "empty", "empty", "no label folders")


def test_missing_folder_is_refused(tmp_path: Path) -> None:
    _raises(tmp_path / "nope", "nope", "not a folder")


def test_single_class_is_refused(tmp_path: Path) -> None:
    _split(tmp_path / "d", {"3": 2})
    _raises(tmp_path / "d", str(tmp_path / "d"), "at least 2 classes")


def test_an_empty_class_folder_is_refused_not_a_phantom_class(tmp_path: Path) -> None:
    _split(tmp_path / "d" / "train", {"3": 2, "7": 2})
    (tmp_path / "d" / "train" / "8").mkdir()  # would be a class the model predicts but never saw
    (tmp_path / "d" / "train" / "8" / ".DS_Store").write_bytes(b"junk")  # hidden files are not images
    _split(tmp_path / "d" / "valid", {"3": 1})
    _raises(tmp_path / "d", str(tmp_path / "d" / "train" / "8"), "empty class folder")


def test_valid_class_missing_from_train_is_refused(tmp_path: Path) -> None:
    _split(tmp_path / "d" / "train", {"3": 1, "7": 1})
    _split(tmp_path / "d" / "valid", {"3": 1, "8": 1})
    _raises(tmp_path / "d", "valid", "'8'")


def test_image_outside_label_folder_is_refused(tmp_path: Path) -> None:
    _split(tmp_path / "d" / "train", {"3": 1, "7": 1})
    _png(tmp_path / "d" / "train" / "stray.png", _digit(0))
    _raises(tmp_path / "d", "stray.png", "label folder")
