"""Time to accuracy: how many seconds of training the CNN needs to reach a test accuracy.

For each epoch budget, trains `--seeds` runs (seeds 0..n-1) with `digitlab train`'s recipe
(one-cycle over the whole budget, so every budget is its own run, not a prefix of a longer
one) and reads the accuracy on the official MNIST test set after the last epoch. Training
seconds are the training passes alone (augmentation, forward, backward, step; the data
already in tensors on the device): validation, and with --tta its 5x inference, are
reported apart, and so is torch.compile's compile time.

The time to the target is the smallest budget at which every seed reached it.

    .venv/bin/python bench/bench_time_to_accuracy.py --task 3v7 --target 0.995 --epochs 3,4,5,6
    .venv/bin/python bench/bench_time_to_accuracy.py --task 10 --target 0.990 --epochs 6,8,10
    python bench/bench_time_to_accuracy.py --task 10 --device cuda --precision bf16 --compile --bs 256 --lr 0.8
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from digitlab.config import Settings
from digitlab.data.loading import train_and_valid
from digitlab.train.recipe import TrainConfig, resolve_device, train

TEST_SET = "../shared/data/mnist-test"
TASKS = {"3v7": "mnist_sample", "10": "mnist"}  # --task: the offline mirror's 3s and 7s, or all 10,000


def hardware(device: str) -> str:
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}"
    name = platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            name = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=list(TASKS), default="3v7")
    parser.add_argument("--target", type=float, default=0.995, help="test accuracy to reach")
    parser.add_argument("--epochs", default="3,4,5,6", help="epoch budgets to try, comma-separated")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--tta", action="store_true", help="validate with test-time augmentation")
    parser.add_argument("--bs", type=int, help="batch size (default: the CNN's)")
    parser.add_argument("--lr", type=float, help="peak learning rate (default: the CNN's)")
    parser.add_argument("--width", type=int, help="CNN width (default: the CNN's)")
    parser.add_argument("--outliers", type=float, help="weight of the marks' loss (default: the CNN's; 0: none)")
    parser.add_argument("--thicken", type=float, help="share of digits drawn thicker (default: the CNN's)")
    parser.add_argument("--test-set", default=TEST_SET, help=f"the official test set's folder (default: {TEST_SET})")
    args = parser.parse_args()
    device = resolve_device(args.device)
    dataset, valid, _ = train_and_valid(TASKS[args.task], args.test_set, Settings.from_env(), lambda message: None)
    levers = (
        [f"precision {args.precision}"] + (["torch.compile"] if args.compile else []) + (["TTA"] if args.tta else [])
    )
    print(
        f"# {hardware(device)}; torch {torch.__version__}, python {platform.python_version()}; {args.seeds} seeds; "
        f"trained on {len(dataset.train):,} mirror digits, tested on {len(valid):,} ({args.test_set}); "
        f"{', '.join(levers)}; bs {args.bs or 'default'}, lr {args.lr or 'default'}, outliers "
        f"{'default' if args.outliers is None else args.outliers}, thicken {'default' if args.thicken is None else args.thicken}"
    )
    print(
        "| epochs | accuracy median | min | max | seeds >= target | training s median (min-max) | "
        "validation s per run | compile s median |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    reached = None
    for epochs in [int(e) for e in args.epochs.split(",")]:
        accuracies, train_seconds, valid_seconds, compile_seconds = [], [], [], []
        for seed in range(args.seeds):
            config = TrainConfig(
                model="cnn",
                epochs=epochs,
                seed=seed,
                device=device,
                precision=args.precision,
                compile=args.compile,
                tta=args.tta,
                bs=args.bs,
                lr=args.lr,
                width=args.width,
                outliers=args.outliers,
                thicken=args.thicken,
            )
            if args.compile:
                torch._dynamo.reset()  # every run pays its own compile, as a user's would
            result = train(config, dataset.train, valid, progress=False)
            history = result.history
            compiled = result.learner.compiler.seconds if args.compile else {True: 0.0, False: 0.0}
            # training passes minus their batches that compiled; validation is every epoch's rest
            train_seconds.append(sum(row["train_seconds"] for row in history) - compiled[True])
            valid_seconds.append(sum(row["seconds"] - row["train_seconds"] for row in history) - compiled[False])
            compile_seconds.append(compiled[True] + compiled[False])
            accuracies.append(history[-1]["batch_accuracy"])
        hits = sum(a >= args.target for a in accuracies)
        print(
            f"| {epochs} | {statistics.median(accuracies):.4f} | {min(accuracies):.4f} | {max(accuracies):.4f} | "
            f"{hits}/{args.seeds} | {statistics.median(train_seconds):.2f} ({min(train_seconds):.2f}-"
            f"{max(train_seconds):.2f}) | {statistics.median(valid_seconds):.2f} | "
            f"{statistics.median(compile_seconds):.2f} |",
            flush=True,
        )
        if hits == args.seeds and reached is None:
            reached = (epochs, statistics.median(train_seconds))
    if reached:
        print(
            f"\ntime to >= {args.target}: {reached[1]:.2f} s of training (median of {args.seeds} seeds), "
            f"{reached[0]} epochs, every seed reached it"
        )
    else:
        print(f"\nno budget tried brought every seed to {args.target}")
    print(f"({time.strftime('%Y-%m-%d %H:%M')})")


if __name__ == "__main__":
    main()
