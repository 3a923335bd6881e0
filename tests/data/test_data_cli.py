"""The data errors through `digitlab data info`: exit 2, one line naming the file, no traceback."""

from __future__ import annotations

import numpy as np
from PIL import Image

from digitlab.cli import main
from digitlab.data.formats.idx import write_idx


def _one_line(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def test_an_idx_label_that_is_not_a_digit(capsys, tmp_path, digits_factory):
    images, labels = digits_factory(3)
    labels[1] = 200
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    assert main(["data", "info", str(tmp_path)]) == 2
    _one_line(capsys, "train-labels-idx1-ubyte.gz", "label 200")


def test_an_empty_class_folder_and_a_32x32_image(capsys, tmp_path, png_tree):
    png_tree(tmp_path / "d", {"train": 3, "valid": 2})
    (tmp_path / "d" / "train" / "8").mkdir()
    assert main(["data", "info", str(tmp_path / "d")]) == 2
    _one_line(capsys, str(tmp_path / "d" / "train" / "8"), "empty class folder")
    (tmp_path / "d" / "train" / "8").rmdir()
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "d" / "train" / "3" / "big.png")
    assert main(["data", "info", str(tmp_path / "d")]) == 2
    _one_line(capsys, "big.png", "32x32", "resize((28, 28))")


def test_a_zero_byte_cache_entry_is_named_and_rebuilt(capsys, tmp_path, png_tree, monkeypatch):
    monkeypatch.setenv("DIGITLAB_HOME", str(tmp_path / "home"))
    png_tree(tmp_path / "d", {"train": 3, "valid": 2})
    assert main(["data", "info", str(tmp_path / "d"), "--json"]) == 0
    (entry,) = (tmp_path / "home" / "decoded").glob("*.npz")
    entry.write_bytes(b"")
    capsys.readouterr()
    assert main(["data", "info", str(tmp_path / "d"), "--json"]) == 0
    _one_line(capsys, str(entry), "damaged cache entry (0 bytes); deleted, rebuilding")
    assert entry.stat().st_size > 0


def test_a_test_set_is_shown_as_one_with_every_number_whole(capsys, tmp_path, digits_factory, monkeypatch):
    images, labels = digits_factory(600, tuple(range(10)), 0)  # 6,000 digits: four-figure counts
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["data", "info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "class" in line)
    assert "test" in header and "train" not in header  # t10k files alone are a test set
    assert "6,000" in out and "…" not in out  # no number cut at 80 columns
    assert "['" not in out  # the files as a list in words, not Python's
