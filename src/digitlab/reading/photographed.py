"""Digits as `predict --number` sees them in a photo: each one photographed and found again.

A model trained on MNIST's 28x28 meets, in a photo, the crop `find_digits` makes of it: the same digit
after a pen of another colour, uneven light, blur, sensor noise, JPEG and a threshold, scaled and centred
again; its strokes come back softer and wider (about 1.6x as many inked pixels). `photographed` makes
those crops of training digits, to train on: the photo is drawn here, with its own random draws
(a digit's ink 50-150 px tall, slanted, on lit paper), and read back by the same code `predict` uses.
"""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image, ImageFilter

from ..core.progress import Log, ProgressCallback
from ..data.digits import Digits, concat
from ..data.lines import ink_crop
from ..errors import DataError
from .segment import find_digits

HEIGHT = (50, 150)  # px, a digit's ink in the photo: a phone's picture of a written number
SLANT = 19.0  # degrees either way: handwriting leans
BLUR = (0.3, 1.2)  # px, Gaussian radius: focus and camera shake
NOISE = (3.0, 10.0)  # sensor noise, standard deviation in 0..255
QUALITY = (55, 90)  # JPEG quality
PROGRESS_EVERY = 1_000  # digits photographed between two progress lines
CHUNK = 100  # digits a thread photographs at a time: a few seconds' work


def photo_of(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """(28, 28) uint8 digit (255 = ink) -> a JPEG photo of it written on paper, with margins."""
    crop = Image.fromarray(ink_crop(digit))
    height = int(rng.integers(*HEIGHT))
    width = max(2, round(crop.width * height / crop.height))
    shear = float(np.tan(np.radians(rng.uniform(-SLANT, SLANT))))
    extra = int(abs(shear) * height) + 1
    ink = crop.resize((width, height), Image.Resampling.BICUBIC).transform(
        (width + extra, height), Image.Transform.AFFINE, (1, shear, -extra if shear > 0 else 0, 0, 1, 0),
        Image.Resampling.BICUBIC,
    )  # fmt: skip
    cut = np.pad(np.asarray(ink, np.float32) / 255, int(height * rng.uniform(0.3, 1.0)))  # (h, w) 0..1
    h, w = cut.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 210 + 30 * rng.uniform(-1, 1) * xx / w + 30 * rng.uniform(-1, 1) * yy / h + float(rng.normal(0, 6))
    paper = np.array([1.0, 0.97, 0.92], np.float32) * rng.uniform(0.9, 1.0)
    pen = np.array([0.15, 0.17, 0.35], np.float32) * rng.uniform(0.5, 1.5)  # blue-black, dark to faded
    strength = float(rng.uniform(0.65, 0.9))  # how dark the ink is against the paper
    rgb = light[..., None] * (paper + strength * cut[..., None] * (pen - paper))
    rgb += rng.normal(0, rng.uniform(*NOISE), rgb.shape).astype(np.float32)
    photo = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(*BLUR)))
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=int(rng.integers(QUALITY[0], QUALITY[1] + 1)))
    return Image.open(io.BytesIO(buffer.getvalue()))


def photographed(
    images: torch.Tensor, seed: int = 0, on_progress: ProgressCallback | None = None, threads: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 28, 28) uint8 digits -> (M, 28, 28) uint8 crops of their photos, as `find_digits` cuts them,
    and the (M,) indices of the digits they come from. M <= N: a photo found to hold no digit, or several
    (a digit in pieces), is left out, as it could not be trained on as that digit.
    threads: photographed CHUNK digits at a time by this many threads (numpy and PIL let go of the GIL
    for most of the work: 1.7x on 2 cores); each chunk draws from its own stream of `seed`, so a seed
    gives the same crops on any number of threads.
    on_progress: called with (done, N) every PROGRESS_EVERY digits."""
    pool = ThreadPoolExecutor(max(1, threads))
    try:
        starts = range(0, len(images), CHUNK)
        chunks = pool.map(lambda s: _photographed(images[s : s + CHUNK].numpy(), s, seed), starts)
        crops, kept = [], []
        for start, (chunk_crops, chunk_kept) in zip(starts, chunks):  # in order, as each is done
            crops += chunk_crops
            kept += chunk_kept
            done = min(start + CHUNK, len(images))
            if on_progress is not None and done < len(images) and done // PROGRESS_EVERY > start // PROGRESS_EVERY:
                on_progress(done, len(images))
    finally:
        pool.shutdown(cancel_futures=True)  # on Ctrl-C: the chunks not begun are dropped, not waited for
    if not crops:
        return torch.zeros((0, 28, 28), dtype=torch.uint8), torch.zeros(0, dtype=torch.int64)
    return torch.stack(crops), torch.tensor(kept)


def _photographed(digits: np.ndarray, start: int, seed: int) -> tuple[list[torch.Tensor], list[int]]:
    """One chunk of `photographed`: (n, 28, 28) uint8 digits, numbered from `start`."""
    rng = np.random.default_rng([seed, start])
    crops, kept = [], []
    for i, digit in enumerate(digits, start):
        try:
            found = find_digits(photo_of(digit, rng), cut_lone=False)
        except DataError:  # too faint to find: nothing to learn from
            continue
        if len(found) == 1:
            crops.append(found[0].image)
            kept.append(i)
    return crops, kept


def with_photos(digits: Digits, share: float, seed: int, say: Log | None = None, threads: int = 1) -> Digits:
    """`digits` and, after them, the crops of photos of a random `share` of them (`photographed`, on
    `threads` threads), labelled as the digits they show. say: progress lines (a count and the time left),
    for runs of minutes."""
    chosen = torch.randperm(len(digits), generator=torch.Generator().manual_seed(seed))[: round(share * len(digits))]
    started = time.perf_counter()

    def progress(done: int, total: int | None) -> None:
        if say is not None and total is not None:
            left = (time.perf_counter() - started) / done * (total - done)
            say(f"photographed {done:,} of {total:,} digits, about {left:.0f} s left")

    crops, kept = photographed(digits.images[chosen], seed, progress, threads)
    return concat([digits, Digits(crops, digits.labels[chosen[kept]], digits.classes)])
