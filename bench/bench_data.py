"""First and cached loads of an MNIST_SAMPLE-sized PNG folder (14,434 PNGs) and its .tgz.

The folder is made from the official test set's digits (`../shared/data/mnist-test`) in the
fastai layout, in a temporary directory with its own cache. Median of several cached loads.

    .venv/bin/python bench/bench_data.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tarfile
import tempfile
import time
from pathlib import Path

from PIL import Image

from digitlab.config import Settings
from digitlab.data.formats.idx import load_idx_folder
from digitlab.data.loading import load_dataset

SPLITS = {"train": 12_396, "valid": 2_038}


def make_tree(root: Path) -> None:
    digits = load_idx_folder(Path("../shared/data/mnist-test")).train
    n = 0
    for split, count in SPLITS.items():
        for i in range(count):
            index = n % len(digits)
            folder = root / split / digits.classes[int(digits.labels[index])]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(digits.images[index].numpy()).save(folder / f"{i}.png")
            n += 1


def timed(spec: str, settings: Settings) -> float:
    started = time.perf_counter()
    load_dataset(spec, settings, lambda message: None)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "mnist_sample"
        make_tree(root)
        with tarfile.open(Path(tmp) / "mnist_sample.tgz", "w:gz") as tar:
            tar.add(root, arcname="mnist_sample")
        settings = Settings(home=Path(tmp) / "home")
        print("| source | first load s | cached load s (median) |")
        print("| --- | --- | --- |")
        for spec in (str(root), str(Path(tmp) / "mnist_sample.tgz")):
            first = timed(spec, settings)
            cached = statistics.median(timed(spec, settings) for _ in range(args.repeats))
            kind = "folder of 14,434 PNGs" if spec.endswith("sample") else ".tgz of the same"
            print(f"| {kind} | {first:.2f} | {cached:.3f} |")


if __name__ == "__main__":
    main()
