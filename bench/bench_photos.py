"""Reading "photos" of digits: the official test set made to look like phone pictures.

Each test digit becomes dark ink on light, unevenly lit paper, scaled up 4-8x, placed
off-centre on a 320x240 page, with noise, saved as JPEG (quality 70). The CNN trained on the
offline digits reads them through digitlab's preprocessing (`to_mnist`) and, for comparison
in the same run, through a naive resize to 28x28.

    .venv/bin/python bench/bench_photos.py MODEL_DIR [--n 10000] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from digitlab.data.formats.idx import load_idx_folder
from digitlab.data.samples import as_photo  # the same photos as `digitlab data samples` makes
from digitlab.errors import DataError
from digitlab.predict.predictor import Predictor
from digitlab.reading.preprocessing import naive_resize, to_mnist


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--paper", choices=["plain", "lined", "grid"], default="plain", help="what the digits are on")
    args = parser.parse_args()
    predictor = Predictor.load(args.model)
    test = load_idx_folder(Path("../shared/data/mnist-test")).train.with_classes(predictor.classes)
    n = min(args.n, len(test))
    rng = np.random.default_rng(args.seed)
    prepared, naive, refused = [], [], []
    started = time.perf_counter()
    for i in range(n):
        photo = as_photo(test.images[i].numpy(), rng, paper=args.paper)
        try:
            prepared.append(to_mnist(photo))
        except DataError:  # refused ("no digit found", "write on plain paper"): counted as wrong
            prepared.append(torch.zeros(28, 28, dtype=torch.uint8))
            refused.append(i)
        naive.append(naive_resize(photo))
    seconds = time.perf_counter() - started

    def accuracy(images: list[torch.Tensor] | torch.Tensor, wrong: list[int] = []) -> float:  # noqa: B006
        right = predictor.predict(torch.stack(list(images))).indices == test.labels[:n]
        right[wrong] = False
        return right.float().mean().item()

    print(f"| pipeline | accuracy on {n:,} test digits |")
    print("| --- | --- |")
    print(f"| clean test digits (no photo) | {accuracy(test.images[:n]):.4f} |")
    print(f"| photos through digitlab's preprocessing ({len(refused)} refused) | {accuracy(prepared, refused):.4f} |")
    print(f"| photos through a naive resize | {accuracy(naive):.4f} |")
    print(
        f"\nmaking and preprocessing the photos: {seconds:.1f} s ({seconds / n * 1000:.1f} ms per photo, both pipelines)"
    )


if __name__ == "__main__":
    main()
