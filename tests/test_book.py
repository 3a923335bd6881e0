"""fastai's helpers the chapter's first cells call: `untar_data` and `tensor`; short reprs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from digitlab.book import tensor, untar_data
from digitlab.config import Settings
from digitlab.data.digits import DigitDataset, Digits


@pytest.fixture
def sample(digits_factory) -> DigitDataset:
    images, labels = digits_factory(5, (3, 7), 0)
    index = torch.as_tensor((labels == 7).astype(np.int64))
    digits = Digits(torch.from_numpy(images), index, ("3", "7"))
    return DigitDataset(
        "tiny", digits.subset(torch.arange(0, 10, 2)), digits.subset(torch.arange(1, 10, 2)), {"source": "test"}
    )


def test_untar_data_writes_the_sample_layout_once(sample, tmp_path, monkeypatch):
    monkeypatch.setattr("digitlab.data.loading.load_dataset", lambda name, settings, log: sample)
    settings = Settings(home=tmp_path)
    lines: list[str] = []
    path = untar_data("tiny", settings, lines.append)
    assert sorted(p.name for p in path.iterdir()) == ["train", "valid"]
    threes = sorted((path / "train" / "3").iterdir())
    assert len(threes) == int((sample.train.labels == 0).sum())
    first_three = sample.train.images[sample.train.labels == 0][0]
    assert torch.equal(tensor(Image.open(threes[0])), first_three)  # lossless PNG: the same pixels
    stamp = threes[0].stat().st_mtime_ns
    assert untar_data("tiny", settings, lines.append) == path and threes[0].stat().st_mtime_ns == stamp
    assert sum("PNG files in" in line for line in lines) == 1
    assert not list(path.parent.glob(".tmp-*"))  # nothing half-written left beside it


def test_untar_data_leaves_nothing_behind_when_interrupted(sample, tmp_path, monkeypatch):
    monkeypatch.setattr("digitlab.data.loading.load_dataset", lambda name, settings, log: sample)

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", fail)
    with pytest.raises(KeyboardInterrupt):
        untar_data("tiny", Settings(home=tmp_path), print)
    assert list((tmp_path / "folders").iterdir()) == []


def test_tensor_takes_what_fastai_does():
    image = Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4))
    t = tensor(image)
    assert t.dtype == torch.uint8 and t.shape == (3, 4) and t[2, 3] == 11
    assert tensor(1, 2, 3).tolist() == [1, 2, 3]
    assert tensor([[1, 2], [3, 4]]).shape == (2, 2)
    assert tensor([torch.zeros(2), torch.ones(2)]).shape == (2, 2)
    assert tensor(np.ones(3), dtype=torch.float64).dtype == torch.float64


def test_reprs_are_one_line(sample):
    assert repr(sample.train) == "Digits(5 images of 3s and 7s (3: 3, 7: 2), (5, 28, 28) uint8)"
    text = repr(sample)
    assert text.startswith("DigitDataset('tiny', train: 5 images") and "valid: 5 images" in text
    assert "source: test" in text and "\n" not in text and "tensor(" not in text


def test_pictures_are_exported_without_loading_matplotlib_at_import():
    import subprocess
    import sys

    code = (
        "import sys, digitlab; assert 'matplotlib' not in sys.modules; "
        "from digitlab import PixelTable, show_image, show_images; print(show_image.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "digitlab.plots.images"


def test_untar_data_gives_fastais_layouts(sample, tmp_path, monkeypatch):
    def named(name, settings, log):
        return DigitDataset(name, sample.train, sample.valid, {"source": "test"})

    monkeypatch.setattr("digitlab.data.loading.load_dataset", named)
    settings = Settings(home=tmp_path)
    full = untar_data("mnist", settings, print)  # fastai's MNIST: training|testing/<digit>/
    assert sorted(p.name for p in full.iterdir()) == ["testing", "training"]
    sample_path = untar_data("mnist_sample", settings, print)  # fastai's MNIST_SAMPLE, with labels.csv
    assert sorted(p.name for p in sample_path.iterdir()) == ["labels.csv", "train", "valid"]
    rows = (sample_path / "labels.csv").read_text().splitlines()
    assert rows[0] == "name,label" and len(rows) == 1 + len(sample.train) + len(sample.valid)
    for row in rows[1:]:  # every row names a file that is there, under its class's folder
        name, label = row.split(",")
        assert (sample_path / name).is_file() and name.split("/")[1] == sample.classes[int(label)]
