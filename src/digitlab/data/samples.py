"""Pictures to try `predict` and the page on before you have photographed your own handwriting.

`write_samples(folder, digits)` makes, from held-out digits (never a model's training digits):
photos of single digits on unevenly lit paper (`seven.jpg`, `photos/0.jpg` ... `photos/9.jpg`),
a photo of a number written on one line (`meter.jpg`, "2026") and a letter drawn with a pen
(`letter_m.png`), which a model should decline. The digits chosen are each class's most typical:
the nearest to that class's mean digit (the chapter's ideal digit) in L1 distance.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .digits import Digits

NUMBER = "2026"  # meter.jpg
PHOTO_QUALITY = 70  # JPEG quality, as a phone's "small" setting
GAP = 10  # pixels between the digits of a number, at 28x28 scale


def typical_digits(digits: Digits, k: int = 3) -> dict[str, list[np.ndarray]]:
    """Class name -> its k (28, 28) uint8 digits nearest its class's mean digit (L1), nearest first."""
    typical = {}
    for index, name in enumerate(digits.classes):
        members = digits.images[digits.labels == index]  # (n, 28, 28) uint8
        if len(members):
            distance = (members.float() - members.float().mean(0)).abs().mean((1, 2))  # (n,)
            typical[name] = [members[int(i)].numpy() for i in distance.argsort()[:k]]
    return typical


def as_photo(ink: np.ndarray, rng: np.random.Generator, scale: int | None = None, paper: str = "plain") -> Image.Image:
    """(H, W) uint8 ink (255 = ink, MNIST polarity) -> a JPEG 'photo' of it: dark ink, not pure black,
    scaled up 4-8x, off-centre on unevenly lit paper with sensor noise. paper: "plain", "lined" (ruled
    lines RULED_PX apart, leaning up to 2 degrees, under the ink) or "grid" (squares of RULED_PX)."""
    scale = scale or int(rng.integers(4, 9))
    big = Image.fromarray(ink).resize((ink.shape[1] * scale, ink.shape[0] * scale), Image.Resampling.BICUBIC)
    cut = np.asarray(big, dtype=np.float64) / 255  # (h, w) in 0..1
    height, width = max(240, cut.shape[0] + 16), max(320, cut.shape[1] + 16)  # pixels of the page
    yy, xx = np.mgrid[0:height, 0:width]
    page = 200 + 40 * (xx / width) - 30 * (yy / height) + rng.normal(0, 4)  # uneven light, 150..240
    top = int(rng.integers(0, height - cut.shape[0] + 1))
    left = int(rng.integers(0, width - cut.shape[1] + 1))
    if paper != "plain":  # drawn before the ink: the lines run under it, as on a notebook's page
        page[_ruled(yy, xx, rng, paper)] -= 50  # 50 levels darker
    region = page[top : top + cut.shape[0], left : left + cut.shape[1]]
    region *= 1 - 0.8 * cut  # a view into page
    page += rng.normal(0, 6, page.shape)  # sensor noise
    buffer = io.BytesIO()
    Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)).convert("RGB").save(buffer, "JPEG", quality=PHOTO_QUALITY)
    return Image.open(io.BytesIO(buffer.getvalue()))


RULED_PX = 40  # between ruled lines (a notebook's 8 mm at ~130 dpi)


def _ruled(yy: np.ndarray, xx: np.ndarray, rng: np.random.Generator, paper: str) -> np.ndarray:
    """Where the page's ruled lines (and, for "grid", columns) 2 px thick are: (H, W) bool, from its
    pixel coordinates."""
    lean = np.tan(np.radians(rng.uniform(-2, 2)))
    offset = int(rng.integers(0, RULED_PX))
    line: np.ndarray = ((yy - xx * lean - offset) % RULED_PX) < 2
    if paper == "grid":
        line |= ((xx + yy * lean - offset) % RULED_PX) < 2
    return line


def written_number(typical: dict[str, list[np.ndarray]], number: str) -> np.ndarray:
    """The digits of `number` side by side on one line, (28, 28n + GAP(n-1)) uint8 ink; a digit that comes
    again is another of its class's typical digits, as a hand never writes the same 2 twice."""
    line = np.zeros((28, 28 * len(number) + GAP * (len(number) - 1)), np.uint8)
    for i, digit in enumerate(number):
        choices = typical[digit]
        line[:, i * (28 + GAP) : i * (28 + GAP) + 28] = choices[number[:i].count(digit) % len(choices)]
    return line


def letter_m() -> Image.Image:
    """A small 'm' drawn with a 3-pixel pen, black on white, 28x28 (as a drawing pad saves it)."""
    picture = Image.new("L", (28, 28), 255)
    pen = ImageDraw.Draw(picture)
    pen.line([(5, 10), (5, 23)], fill=0, width=3)  # the first stem
    pen.arc([5, 9, 14, 19], 180, 360, fill=0, width=3)  # two arches, each coming down to a stem
    pen.line([(14, 14), (14, 23)], fill=0, width=3)
    pen.arc([14, 9, 23, 19], 180, 360, fill=0, width=3)
    pen.line([(23, 14), (23, 23)], fill=0, width=3)
    return picture


def write_samples(folder: Path, digits: Digits, seed: int = 0) -> list[Path]:
    """Write the sample pictures into `folder` (made if missing; files of the same names replaced).
    Returns the files written. `digits` must hold all ten classes 0..9."""
    typical = typical_digits(digits)
    missing = [str(d) for d in range(10) if str(d) not in typical]
    if missing:
        raise ValueError(f"sample pictures need all ten digits; missing {', '.join(missing)}")
    rng = np.random.default_rng(seed)
    (folder / "photos").mkdir(parents=True, exist_ok=True)
    pictures = {Path("seven.jpg"): as_photo(typical["7"][0], rng)}
    pictures |= {Path("photos") / f"{d}.jpg": as_photo(typical[str(d)][0], rng) for d in range(10)}
    pictures[Path("meter.jpg")] = as_photo(written_number(typical, NUMBER), rng, scale=4)
    pictures[Path("letter_m.png")] = letter_m()
    for name, picture in pictures.items():
        picture.save(folder / name)
    return [folder / name for name in pictures]
