"""Sample pictures: held-out digits photographed, a number, a letter; the most typical digit of each class."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from digitlab.data.digits import Digits
from digitlab.data.samples import typical_digits, write_samples
from digitlab.reading.preprocessing import to_mnist


def ten_classes(n: int = 6) -> Digits:
    """n digits a class: a bar at the class's own row, the last of each class a stray (a blob elsewhere)."""
    images = torch.zeros(10 * n, 28, 28, dtype=torch.uint8)
    for d in range(10):
        for i in range(n):
            image = images[d * n + i]
            if i == n - 1:
                image[2:8, 2:8] = 255  # unlike the others of its class
            else:
                image[4 + 2 * d : 6 + 2 * d, 6:22] = 255
    return Digits(images, torch.arange(10).repeat_interleave(n), tuple(map(str, range(10))))


def test_typical_digits_are_near_their_class_mean():
    typical = typical_digits(ten_classes(), k=2)
    for d in range(10):
        for image in typical[str(d)]:  # the strays are never chosen
            assert image[4 + 2 * d, 10] == 255 and image[3, 3] == 0


def test_the_pictures_are_written_with_ink_the_preprocessing_finds(tmp_path):
    written = write_samples(tmp_path / "samples", ten_classes())
    names = {str(p.relative_to(tmp_path / "samples")) for p in written}
    assert {"seven.jpg", "meter.jpg", "letter_m.png"} | {f"photos/{d}.jpg" for d in range(10)} == names
    assert all(p.stat().st_size > 0 for p in written)
    seen = to_mnist(Image.open(tmp_path / "samples" / "photos" / "3.jpg"))  # (28, 28) uint8, ink bright
    assert seen.float().mean() > 5  # a photo of ink, found again by the preprocessing


def test_digits_without_all_ten_classes_are_refused(tmp_path):
    three_and_seven = Digits(torch.zeros(2, 28, 28, dtype=torch.uint8), torch.tensor([0, 1]), ("3", "7"))
    with pytest.raises(ValueError, match="all ten digits"):
        write_samples(tmp_path, three_and_seven)
