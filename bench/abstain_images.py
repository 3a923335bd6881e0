"""The images bench_abstain.py asks the model about: letters in fonts, drawings (scribbles, smiley faces),
noise, several digits side by side and digits as photos, all as pictures to go through `to_mnist`.
"""

from __future__ import annotations

import glob

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from bench_photos import as_photo  # beside this file (python puts the script's folder on the path)
from digitlab.errors import DataError
from digitlab.reading.preprocessing import to_mnist

FONTS = sorted(
    glob.glob("/usr/share/fonts/truetype/dejavu/DejaVu*.ttf")
    + glob.glob("/usr/share/fonts/truetype/liberation/Liberation*.ttf")
)
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
DIGIT_LIKE = set("OoIlSsZzBbGgq")  # letters that are drawn like a digit (0, 1, 5, 2, 8, 6, 9)


def prepared(images: list[Image.Image]) -> tuple[torch.Tensor, int]:
    """Images through to_mnist: (N, 28, 28) uint8 of those it reads, and how many it refused as blank."""
    out, refused = [], 0
    for image in images:
        try:
            out.append(to_mnist(image))
        except DataError:
            refused += 1
    return (torch.stack(out) if out else torch.empty(0, 28, 28, dtype=torch.uint8)), refused


def letters(rng: np.random.Generator) -> tuple[torch.Tensor, list[str], int]:
    """Every letter in every font, as a photo through to_mnist: (N, 28, 28), their letters, how many refused."""
    images, names = [], []
    for font in FONTS:
        face = ImageFont.truetype(font, 90)
        for ch in LETTERS:
            image = Image.new("L", (160, 160), 255)
            ImageDraw.Draw(image).text((80, 80), ch, fill=0, font=face, anchor="mm")
            digits, refused = prepared([image.rotate(float(rng.uniform(-8, 8)), fillcolor=255)])
            if not refused:
                images.append(digits[0])
                names.append(ch)
    return torch.stack(images), names, len(FONTS) * len(LETTERS) - len(names)


def drawings(rng: np.random.Generator, n: int, face: bool) -> list[Image.Image]:
    out = []
    for _ in range(n):
        image = Image.new("L", (200, 200), 255)
        draw = ImageDraw.Draw(image)
        width = int(rng.integers(4, 12))
        if face:
            r = int(rng.integers(50, 90))
            draw.ellipse([100 - r, 100 - r, 100 + r, 100 + r], outline=0, width=width)
            for dx in (-r // 3, r // 3):
                draw.ellipse([100 + dx - 6, 100 - r // 3 - 6, 100 + dx + 6, 100 - r // 3 + 6], fill=0)
            draw.arc([100 - r // 2, 100, 100 + r // 2, 100 + r // 2], 20, 160, fill=0, width=width)
        else:
            for _ in range(int(rng.integers(3, 7))):
                points = [tuple(int(v) for v in rng.integers(10, 190, 2)) for _ in range(2)]
                if rng.random() < 0.5:
                    draw.line(points, fill=0, width=width)
                else:
                    box = [min(points[0][0], points[1][0]), min(points[0][1], points[1][1])]
                    box += [max(points[0][0], points[1][0]) + 10, max(points[0][1], points[1][1]) + 10]
                    draw.arc(box, int(rng.integers(0, 360)), int(rng.integers(0, 360)), fill=0, width=width)
        out.append(image)
    return out


def noise(rng: np.random.Generator, n: int) -> list[Image.Image]:
    uniform = [Image.fromarray((rng.random((100, 100)) * 255).astype(np.uint8)) for _ in range(n // 2)]
    blobs = [
        Image.fromarray(np.clip(rng.normal(128, 40, (12, 12)), 0, 255).astype(np.uint8)).resize((200, 200))
        for _ in range(n - n // 2)
    ]
    return uniform + blobs


def several(test: torch.Tensor, rng: np.random.Generator, n: int) -> list[Image.Image]:
    out = []
    for _ in range(n):
        row = np.concatenate([255 - test[int(j)].numpy() for j in rng.integers(0, len(test), rng.integers(2, 5))], 1)
        out.append(Image.fromarray(row).resize((row.shape[1] * 4, 112)))
    return out


def photos(test: torch.Tensor, rng: np.random.Generator, n: int, thick: bool) -> list[Image.Image]:
    """n test digits as photos; thick: drawn with a pen about twice as thick (a 3x3 dilation at 28x28)."""
    out = []
    for digit in test[:n]:
        image = Image.fromarray(digit.numpy())
        out.append(as_photo(np.asarray(image.filter(ImageFilter.MaxFilter(3)) if thick else image), rng))
    return out
