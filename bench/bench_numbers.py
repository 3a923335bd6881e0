"""Reading whole numbers: 4-digit numbers made of official test-set digits, as phone-like photos.

Each number takes 4 random digits of the MNIST test set (../shared/data/mnist-test; benchmarks
only), each cropped to its ink and scaled to a digit height of 50-150 px (+-12% per digit), slanted
together (-15..15 degrees, +-4 per digit), on a baseline that tilts (+-5%) and jitters (+-8% of the
height), with gaps of 0.08-0.6 of the height between the digits' boxes ("spaced") or -0.1..0.03
("touching": the boxes overlap, strokes often touch). The ink (dark blue-black, 65-90% dark) goes
on paper-coloured, unevenly lit paper with margins, then sensor noise (sigma 3-10), blur
(radius 0.3-1.2) and JPEG (quality 55-90). `read_number` finds the digits
(`find_digits`, the model judging where touching digits are cut) and the model reads them.

    .venv/bin/python bench/bench_numbers.py MODEL_DIR [--n 500] [--seeds 0 1 2] [--gaps spaced touching]
        [--errors DIR]   the photos read wrong whose clean digits read right, named by truth and reading

string accuracy: the 4 digits read exactly (count and order); digit accuracy: 1 - edit distance /
4 per number (a missed or extra digit costs one); found 4: numbers where exactly 4 digits were found;
clean: the same 4 test digits read from their own 28x28 (no photo, no segmentation), the ceiling.
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

from digitlab.data.formats.idx import load_idx_folder
from digitlab.predict.numbers import read_number
from digitlab.predict.predictor import Predictor

GAPS = {"spaced": (0.08, 0.6), "touching": (-0.1, 0.03)}  # gap between digit boxes / digit height
LENGTH = 4


def _digit_ink(digit: np.ndarray, height: int, slant: float) -> np.ndarray:
    """(28, 28) uint8 -> its ink, cropped, scaled to `height` px tall, sheared by `slant` degrees: float 0..1."""
    rows, cols = np.nonzero(digit > 30)
    crop = Image.fromarray(digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1])
    width = max(2, round(crop.width * height / crop.height))
    big = crop.resize((width, height), Image.Resampling.BICUBIC)
    shear = np.tan(np.radians(slant))
    extra = int(abs(shear) * height) + 1
    sheared = big.transform(
        (width + extra, height),
        Image.Transform.AFFINE,
        (1, shear, -extra if shear > 0 else 0, 0, 1, 0),  # x_in = x_out + shear * y: tops lean right for shear > 0
        Image.Resampling.BICUBIC,
    )
    return np.asarray(sheared, np.float32) / 255


def render_number(digits: list[np.ndarray], rng: np.random.Generator, gaps: tuple[float, float]) -> Image.Image:
    """Test digits (28, 28) uint8 each -> a JPEG 'photo' of them written as one number."""
    size = float(rng.uniform(50, 150))
    slant, tilt = float(rng.uniform(-15, 15)), float(rng.uniform(-0.05, 0.05))
    inks = [_digit_ink(d, max(12, round(size * rng.uniform(0.88, 1.12))), slant + rng.uniform(-4, 4)) for d in digits]
    margin = int(size * rng.uniform(0.4, 1.2))
    xs, x = [], margin
    for ink in inks:
        xs.append(x)
        x += ink.shape[1] + int(size * rng.uniform(*gaps))
    width = x + margin
    height = int(size * 1.5) + 2 * margin
    canvas = np.zeros((height, width), np.float32)
    for ink, left in zip(inks, xs):
        top = int(margin + 0.25 * size + tilt * left + rng.uniform(-0.08, 0.08) * size)
        top = min(max(top, 0), height - ink.shape[0])
        region = canvas[top : top + ink.shape[0], left : left + ink.shape[1]]
        np.maximum(region, ink[: region.shape[0], : region.shape[1]], out=region)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    light = 215 + 30 * xx / width - 25 * yy / height + float(rng.normal(0, 6))
    paper = np.array([1.0, 0.97, 0.92], np.float32) * rng.uniform(0.9, 1.0)
    pen = np.array([0.15, 0.17, 0.35], np.float32) * rng.uniform(0.5, 1.5)
    strength = float(rng.uniform(0.65, 0.9))
    rgb = light[..., None] * (paper + strength * canvas[..., None] * (pen - paper))
    rgb += rng.normal(0, rng.uniform(3, 10), rgb.shape).astype(np.float32)
    photo = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2))
    )
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=int(rng.integers(55, 91)))
    return Image.open(io.BytesIO(buffer.getvalue()))


def _edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]


def run(predictor: Predictor, test, n: int, seed: int, kind: str, errors: Path | None = None) -> dict[str, float]:
    """One seed's numbers, their gaps GAPS[kind]; errors: a folder to save the photos read wrong whose clean
    digits read right (`<kind>-<seed>-<truth>-read-<reading>.jpg`, spaces as "_"): what the photo and the
    cutting lose."""
    rng, gaps = np.random.default_rng(seed), GAPS[kind]
    exact = digits_right = found_four = clean = 0
    seconds = 0.0
    for _ in range(n):
        picks = rng.integers(0, len(test), LENGTH)
        truth = "".join(test.classes[int(test.labels[i])] for i in picks)
        clean_read = "".join(predictor.predict(test.images[torch.from_numpy(picks)]).labels)  # no photo
        clean += clean_read == truth
        photo = render_number([test.images[int(i)].numpy() for i in picks], rng, gaps)
        started = time.perf_counter()
        try:
            read = read_number(predictor, photo).number
        except Exception as e:  # a number read as no digit at all counts as wrong; say what happened
            print(f"  {truth}: {e}")
            read = ""
        seconds += time.perf_counter() - started
        exact += read == truth
        if errors is not None and read != truth and clean_read == truth:
            photo.save(errors / f"{kind}-{seed}-{truth}-read-{read.replace(' ', '_') or 'nothing'}.jpg")
        found_four += len(read) == LENGTH
        digits_right += max(0, LENGTH - _edit_distance(read, truth))
    return {
        "string": exact / n,
        "digit": digits_right / (LENGTH * n),
        "found4": found_four / n,
        "clean": clean / n,
        "ms": seconds / n * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--n", type=int, default=500, help="numbers per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--gaps", nargs="+", default=list(GAPS), choices=list(GAPS))
    parser.add_argument("--tta", action="store_true", help="read each digit with test-time augmentation")
    parser.add_argument("--errors", type=Path, help="save here the photos read wrong whose clean digits read right")
    args = parser.parse_args()
    if args.errors:
        args.errors.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    predictor = Predictor.load(args.model, tta=args.tta)
    test = load_idx_folder(Path("../shared/data/mnist-test")).train.with_classes(predictor.classes)
    print(
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, torch {torch.__version__}"
    )
    print(
        f"model {args.model} ({predictor.card.architecture.name}{', tta' if args.tta else ''}); {args.n} numbers per seed"
    )
    print(
        "\n| gaps | seed | string accuracy | digit accuracy | 4 digits found | the 4 clean digits read right | ms per number |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in args.gaps:
        results = [run(predictor, test, args.n, seed, name, args.errors) for seed in args.seeds]
        for seed, r in zip(args.seeds, results):
            print(
                f"| {name} | {seed} | {r['string']:.3f} | {r['digit']:.4f} | {r['found4']:.3f} | {r['clean']:.3f} | {r['ms']:.0f} |"
            )
        median = {k: statistics.median(r[k] for r in results) for k in results[0]}
        print(
            f"| {name} | median | {median['string']:.3f} | {median['digit']:.4f} | {median['found4']:.3f} | {median['clean']:.3f} | {median['ms']:.0f} |"
        )


if __name__ == "__main__":
    main()
