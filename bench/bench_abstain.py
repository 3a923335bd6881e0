"""Abstaining: how often the model rejects images that are not digits, against how often it rejects real ones.

Trains the CNN (`digitlab train --model cnn --data mnist`: the offline 10,000 digits, its holdout
calibrates the thresholds) once per seed, then reads:
- the official test digits (`../shared/data/mnist-test`): false rejections, and the accuracy of the answers;
- Fashion-MNIST's 10,000 test images (Debian's `dataset-fashion-mnist`) as 28x28 inputs, and 1,000 of
  them as photos (dark on light paper, 112 px) through `to_mnist`;
- letters A-Z and a-z drawn with DejaVu and Liberation fonts (Debian's fonts-dejavu-core,
  fonts-liberation), rotated up to 8 degrees, as photos through `to_mnist`;
- noise (uniform pixels; Gaussian blobs), scribbles (random lines and arcs), smiley faces, and
  2-4 test digits side by side, all through `to_mnist`;
- 1,000 test digits as photos (`bench_photos.as_photo`), and the same drawn with a pen twice as
  thick (dilated 3x3 first), through `to_mnist`: false rejections of digits that went through the
  preprocessing, which the pixel distance to the ideal digits could reject more than the features.
An image `to_mnist` refuses ("no digit found") counts as rejected. Each seed trains the CNN's recipe as
`digitlab train` has it ("recipe": with its marks that are not digits and thicker pens, `digitlab.train.
outliers`) and without them ("no marks": `outliers=0, thicken=0`, the recipe before them), one after the
other on the same digits, and the two are read on the same images. Each model is calibrated again on
its holdout for every --pixel-targets value (the share of held-out digits the pixel distance to the
ideal digits rejects beyond the Mahalanobis distance's 1%, `digitlab.predict.abstain.PIXEL_TARGET`;
0 is the Mahalanobis distance alone, as before the pixel check), compared on the same models. The median over seeds is printed,
and for the first seed the rejection of each candidate score at the same 1% false rejections.

    .venv/bin/python bench/bench_abstain.py [--seeds 0 1 2] [--epochs 8] [--recipes recipe "no marks"]
        [--pixel-targets 0 0.0025] [--out seed0.json]
    .venv/bin/python bench/bench_abstain.py --combine seed0.json seed1.json seed2.json   the medians
(seeds may run as separate processes, side by side, and be combined afterwards)
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import digitlab
from abstain_images import DIGIT_LIKE, FONTS, drawings, letters, noise, photos, prepared, several  # beside this file
from digitlab.artifacts.inference import probabilities
from digitlab.artifacts.serialization import load_ideal_digits
from digitlab.data.digits import with_holdout
from digitlab.data.formats.idx import load_idx_folder, load_idx_pair
from digitlab.data.loading import load_dataset
from digitlab.jobs.train_run import DataSource, train_run
from digitlab.predict.abstain import NOT_A_DIGIT, PIXEL_TARGET, Abstainer, calibrate, pixel_distances
from digitlab.predict.mahalanobis import ClassStats, load_stats, outputs_and_features
from digitlab.predict.predictor import Predictor
from digitlab.train.config import TrainConfig
from digitlab.train.recipe import TrainJob

FASHION = Path("/usr/share/datasets/fashion-mnist")
# The CNN's recipe as `digitlab train` has it, and without its marks and thicker pens (as before them)
RECIPES: dict[str, dict[str, float]] = {"recipe": {}, "no marks": {"outliers": 0.0, "thicken": 0.0}}


def rejected(predictor: Predictor, digits: torch.Tensor, refused: int = 0) -> dict[str, float]:
    found = predictor.predict(digits, k=2) if len(digits) else None
    reasons = (found.reasons or []) if found else []
    n = len(reasons) + refused
    far = sum(r == NOT_A_DIGIT for r in reasons)
    unsure = sum(r is not None and r != NOT_A_DIGIT for r in reasons)
    return {
        "n": n,
        "rejected": (far + unsure + refused) / n,
        "not_a_digit": far / n,
        "not_sure": unsure / n,
        "blank": refused / n,
    }


def scores(
    predictor: Predictor, digits: torch.Tensor, stats: Callable[[torch.Tensor], torch.Tensor], ideals: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Candidate out-of-distribution scores, higher = more digit-like."""
    outputs, features = outputs_and_features(predictor.model, digits, predictor.card.normalization)
    probs = outputs.double().softmax(1)
    top = probs.topk(2, 1).values
    return {
        "max probability": top[:, 0],
        "margin": top[:, 0] - top[:, 1],
        "energy (logsumexp)": torch.logsumexp(outputs.double(), 1),
        "ink (mean pixel, low)": -digits.double().mean((1, 2)),
        "L1 to the nearest ideal digit": -(digits.double()[:, None] / 255 - ideals.double()[None])
        .abs()
        .mean((2, 3))
        .min(1)
        .values,
        "Mahalanobis (chosen)": -stats(features),
    }


def recalibrated(predictor: Predictor, valid: torch.Tensor, stats: ClassStats, ideals: torch.Tensor) -> Callable:
    """pixel target -> the predictor with its thresholds calibrated again on the holdout `valid`, the pixel
    distance rejecting that share of it beyond the Mahalanobis distance (training: PIXEL_TARGET)."""
    outputs, features = outputs_and_features(predictor.model, valid, predictor.card.normalization)
    probs, distances = probabilities(outputs.double(), predictor.card.binary), stats.distances(features)
    pixels = pixel_distances(valid, ideals)

    def at(pixel_target: float) -> Predictor:
        calibration = calibrate(probs, distances, None, pixels=pixels, pixel_target=pixel_target)
        return Predictor(predictor.model, predictor.card, abstainer=Abstainer(calibration, stats, ideals))

    return at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pixel-targets", type=float, nargs="+", default=[PIXEL_TARGET])
    parser.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=list(RECIPES))
    parser.add_argument("--out", type=Path, help="also write this run's numbers as JSON, for --combine")
    parser.add_argument("--combine", type=Path, nargs="+", help="print the medians of runs written with --out")
    args = parser.parse_args()
    if args.combine:
        runs = [json.loads(p.read_text()) for p in args.combine]
        keys = runs[0]["keys"]
        tables = {
            key: {name: [row for run in runs for row in run["tables"][key][name]] for name in runs[0]["tables"][key]}
            for key in keys
        }
        accuracies = {key: [pair for run in runs for pair in run["accuracies"][key]] for key in keys}
        print_tables(tables, accuracies, [seed for run in runs for seed in run["seeds"]], runs[0]["epochs"])
        return
    if not (FASHION / "t10k-images-idx3-ubyte.gz").exists() or not FONTS:
        raise SystemExit(
            "needs Debian's dataset-fashion-mnist, fonts-dejavu-core and fonts-liberation (apt-get install)"
        )
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    data = with_holdout(load_dataset("mnist"))
    test = load_idx_folder(Path("../shared/data/mnist-test")).train
    fashion = load_idx_pair(FASHION / "t10k-images-idx3-ubyte.gz", FASHION / "t10k-labels-idx1-ubyte.gz").images
    letter_digits, letter_names, letter_refused = letters(rng)
    plain = torch.tensor([c not in DIGIT_LIKE for c in letter_names])
    sources = {
        "Fashion-MNIST, 28x28 as is": (fashion, 0),
        "Fashion-MNIST as photos (1,000)": prepared(
            [Image.fromarray(255 - f.numpy()).resize((112, 112)) for f in fashion[:1000]]
        ),
        f"letters, {len(FONTS)} fonts": (letter_digits, letter_refused),
        "the letters not shaped like a digit": (letter_digits[plain], 0),
        "noise (200)": prepared(noise(rng, 200)),
        "scribbles (200)": prepared(drawings(rng, 200, face=False)),
        "smiley faces (200)": prepared(drawings(rng, 200, face=True)),
        "2-4 digits side by side (500)": prepared(several(test.images, rng, 500)),
    }
    digit_photos = {  # after the others: their images are those of the runs before these rows
        "test digits as photos (1,000; false rejections)": prepared(photos(test.images, rng, 1000, thick=False)),
        "the same, a pen twice as thick (false rejections)": prepared(photos(test.images, rng, 1000, thick=True)),
    }
    recipes = {name: RECIPES[name] for name in args.recipes}
    keys = [f"{name}, pixel target {target}" for name in recipes for target in args.pixel_targets]
    tables: dict[str, dict[str, list[dict[str, float]]]] = {key: {} for key in keys}
    accuracies: dict[str, list[tuple[float, float]]] = {key: [] for key in keys}
    for seed in args.seeds:
        for name, overrides in recipes.items():  # each recipe on the same seed, one after the other
            with tempfile.TemporaryDirectory() as tmp:
                started = time.perf_counter()
                config = TrainConfig(model="cnn", epochs=args.epochs, seed=seed, **overrides)
                job = TrainJob(config, data.train, data.valid, progress=False)
                train_run(job, Path(tmp), DataSource("mnist", data.provenance, "holdout"))
                trained = Predictor.load(tmp)
                seconds = time.perf_counter() - started
                print(f"seed {seed}, {name}: trained in {seconds:.0f} s; calibration {trained.card.abstain}")
                stats, ideals = load_stats(Path(tmp), trained.card), load_ideal_digits(Path(tmp), 10)
                assert stats is not None and ideals is not None
                at = recalibrated(trained, data.valid.images, stats, ideals)
                for target in args.pixel_targets:
                    key = f"{name}, pixel target {target}"
                    predictor = at(float(target))
                    found = predictor.predict(test.images, k=2)
                    correct = found.indices == test.labels
                    answered = torch.tensor([a is not None for a in found.answers])
                    accuracies[key].append((float(correct.double().mean()), float(correct[answered].double().mean())))
                    table = tables[key]
                    table.setdefault("official test digits (false rejections)", []).append(
                        rejected(predictor, test.images)
                    )
                    for row, (digits, refused) in {**digit_photos, **sources}.items():
                        table.setdefault(row, []).append(rejected(predictor, digits, refused))
                if seed == args.seeds[0]:
                    print(f"\n{name}:")
                    compare(trained, test.images, sources, stats.distances, ideals)
    if args.out:
        numbers = {"tables": tables, "accuracies": accuracies, "seeds": args.seeds, "epochs": args.epochs}
        args.out.write_text(json.dumps(numbers | {"keys": keys}))
    print_tables(tables, accuracies, args.seeds, args.epochs)


def print_tables(
    tables: dict[str, dict[str, list[dict[str, float]]]], accuracies: dict[str, list], seeds: list[int], epochs: int
) -> None:
    print(
        f"\nmachine: {platform.processor() or platform.machine()}, python {platform.python_version()}, "
        f"torch {torch.__version__}, digitlab {digitlab.__version__}; seeds {seeds}, {epochs} epochs"
    )
    for key, table in tables.items():
        pairs = accuracies[key]
        print(
            f"\n{key}: test accuracy (median) {statistics.median(a for a, _ in pairs):.4f} on all, "
            f"{statistics.median(b for _, b in pairs):.4f} on the answered"
        )
        print("| images | n | rejected (median) | min | max | not a digit | not sure | to_mnist: blank |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for name, rows in table.items():
            med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
            low, high = min(r["rejected"] for r in rows), max(r["rejected"] for r in rows)
            print(
                f"| {name} | {int(med['n']):,} | {med['rejected']:.3f} | {low:.3f} | {high:.3f} | "
                f"{med['not_a_digit']:.3f} | {med['not_sure']:.3f} | {med['blank']:.3f} |"
            )
    names = list(next(iter(tables.values())))
    print("\nrejected (median)\n| images | " + " | ".join(tables) + " |")
    print("| --- " * (len(tables) + 1) + "|")
    for name in names:
        cells = [f"{statistics.median(r['rejected'] for r in table[name]):.3f}" for table in tables.values()]
        print(f"| {name} | " + " | ".join(cells) + " |")


def compare(predictor: Predictor, test: torch.Tensor, sources: dict, distances: Callable, ideals: torch.Tensor) -> None:
    """Each candidate score alone, thresholded to reject 1% of the test digits: what it rejects elsewhere."""
    base = scores(predictor, test, distances, ideals)
    names = [n for n in sources if len(sources[n][0])]
    print("\n| score alone, at 1% false rejections | " + " | ".join(names) + " |")
    print("| --- " * (len(names) + 1) + "|")
    others = {n: scores(predictor, sources[n][0], distances, ideals) for n in names}
    for score in base:
        cut = torch.quantile(base[score], 0.01)
        print(
            f"| {score} | " + " | ".join(f"{float((others[n][score] < cut).double().mean()):.3f}" for n in names) + " |"
        )


if __name__ == "__main__":
    main()
