"""Time to accuracy on the full MNIST: digitlab's CNN recipe beside a hand-written eager loop, same run.

Trains on the official 60,000 training digits and tests on the official 10,000 (`DIGITLAB_MNIST_FILES`
naming `../shared/data/mnist-train` and `mnist-test`), for each seed in turn:
  digitlab  `train(TrainConfig(model="cnn", epochs=E, seed=s, threads=T))`: the recipe `digitlab train
            --model cnn --data mnist` runs (one-cycle over E epochs, augmentation, label smoothing)
  eager     the loop one writes by hand in plain PyTorch: the same CNN module, `randperm` slices of the
            data held in tensors, torch.optim.SGD (momentum 0.9, weight decay 5e-4), torch's OneCycleLR
            to the same peak lr, cross-entropy with label smoothing 0.1, no augmentation
Training seconds are the training passes alone (validation apart); accuracy is on the 10,000 test
digits after the last epoch. The loops alternate seed by seed, so all see the same machine; `--loops`
adds "no-marks", digitlab's recipe without its marks that are not digits and thicker pens
(`outliers=0, thicken=0`), or "fastai", the book's own recipe in fastai (resnet18 from `vision_learner`,
`fit_one_cycle(E, 0.1)`, from a folder of PNGs as `untar_data(URLs.MNIST)` gives), run by
`fastai_book_recipe.py` with `--fastai-python`: a Python whose environment has fastai, which cannot share
digitlab's (fastai needs torchvision, whose wheels pin their own torch; its torch version is printed).

    DIGITLAB_MNIST_FILES=../shared/data/mnist-train:../shared/data/mnist-test \\
        .venv/bin/python bench/bench_full_mnist.py --epochs 1,3 --seeds 5 --threads 2
    python3.11 -m venv /tmp/fastai && /tmp/fastai/bin/pip install torch==2.5.1 torchvision==0.20.1 fastai==2.8.*
    ... bench_full_mnist.py --epochs 1 --seeds 3 --loops digitlab,eager,fastai --fastai-python /tmp/fastai/bin/python
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from digitlab.book import untar_data
from digitlab.config import Settings
from digitlab.core.defaults import MODEL_DEFAULTS
from digitlab.data.digits import Digits
from digitlab.data.loading import train_and_valid
from digitlab.models import CNN
from digitlab.train.config import TrainConfig
from digitlab.train.recipe import normalization_for, train

TEST_SET = "../shared/data/mnist-test"
RECIPE = MODEL_DEFAULTS["cnn"]  # the CNN's bs, lr, momentum, weight decay, label smoothing, width
Run = Callable[[Digits, Digits, int, int, int], tuple[float, float]]  # (train, test, epochs, seed, threads)


def digitlab_run(
    train_digits: Digits, test: Digits, epochs: int, seed: int, threads: int, **changes: float
) -> tuple[float, float]:
    config = TrainConfig(model="cnn", epochs=epochs, seed=seed, threads=threads, **changes)
    history = train(config, train_digits, test, False).history
    return history[-1]["batch_accuracy"], sum(row["train_seconds"] for row in history)


def no_marks_run(train_digits: Digits, test: Digits, epochs: int, seed: int, threads: int) -> tuple[float, float]:
    """digitlab's recipe without its marks that are not digits and thicker pens (as it was before them)."""
    return digitlab_run(train_digits, test, epochs, seed, threads, outliers=0.0, thicken=0.0)


def eager_run(train_digits: Digits, test: Digits, epochs: int, seed: int, threads: int) -> tuple[float, float]:
    """The hand-written loop; its inputs standardised as digitlab's are (the training set's mean and std)."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    norm = normalization_for(TrainConfig(model="cnn"), train_digits.images)
    x = (train_digits.images.float() / 255 - norm["mean"]) / norm["std"]  # (N, 28, 28) float32
    y = train_digits.labels
    model = CNN(10, RECIPE["width"])
    bs = RECIPE["bs"]
    steps = epochs * math.ceil(len(x) / bs)
    opt = torch.optim.SGD(model.parameters(), lr=RECIPE["lr"], momentum=RECIPE["mom"], weight_decay=RECIPE["wd"])
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=RECIPE["lr"], total_steps=steps)
    seconds = 0.0
    for _ in range(epochs):
        started = time.perf_counter()
        model.train()
        perm = torch.randperm(len(x))
        for i in range(0, len(x), bs):
            index = perm[i : i + bs]
            loss = F.cross_entropy(model(x[index]), y[index], label_smoothing=RECIPE["label_smoothing"])
            loss.backward()
            opt.step()
            opt.zero_grad()
            schedule.step()
        seconds += time.perf_counter() - started
    model.eval()
    tx = (test.images.float() / 255 - norm["mean"]) / norm["std"]
    with torch.no_grad():
        predicted = torch.cat([model(tx[i : i + 1000]).argmax(1) for i in range(0, len(tx), 1000)])
    return (predicted == test.labels).float().mean().item(), seconds


def fastai_run(python: str, epochs: int, seed: int, threads: int) -> dict[str, Any]:
    """The book's recipe in fastai, in its own environment (`fastai_book_recipe.py`), on the same digits:
    its report (accuracy, train_seconds, and the torch and loader workers it ran with)."""
    folder = untar_data("mnist", log=lambda message: None)
    script = Path(__file__).with_name("fastai_book_recipe.py")
    command = [python, str(script), str(folder), f"--epochs={epochs}", f"--seed={seed}", f"--threads={threads}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"fastai's run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if (result["train"], result["valid"]) != (60_000, 10_000):
        sys.exit(f"fastai read {result['train']:,} / {result['valid']:,} digits, not 60,000 / 10,000")
    return result


def fastai_loop(python: str) -> Run:
    """fastai_run as a loop of RUNS' kind; the first run also prints what fastai's environment ran with."""
    said = False

    def run(train: Digits, test: Digits, epochs: int, seed: int, threads: int) -> tuple[float, float]:
        nonlocal said
        result = fastai_run(python, epochs, seed, threads)
        if not said:
            print(f"# fastai: torch {result['torch']}, {result['workers']} loader workers, its default batch size 64")
            said = True
        return result["accuracy"], result["train_seconds"]

    return run


RUNS: dict[str, Run] = {"digitlab": digitlab_run, "eager": eager_run, "no-marks": no_marks_run}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", default="1,3", help="epoch budgets, comma-separated (each its own run)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--targets", default="0.990,0.995", help="test accuracies to report reaching")
    parser.add_argument(
        "--loops", default="digitlab,eager", help=f"which, comma-separated, of {', '.join(RUNS)}, fastai"
    )
    parser.add_argument("--fastai-python", help="a Python with fastai installed, for the fastai loop")
    args = parser.parse_args()
    dataset, test, _ = train_and_valid("mnist", TEST_SET, Settings.from_env(), lambda message: None)
    if len(dataset.train) != 60_000:
        raise SystemExit(f"{len(dataset.train):,} training digits: set DIGITLAB_MNIST_FILES to the official files")
    with open("/proc/cpuinfo") as cpuinfo:
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "?")
    print(
        f"# {cpu}, {os.cpu_count()} cores, {args.threads} threads; torch {torch.__version__}, python "
        f"{platform.python_version()}; 60,000 -> 10,000; seeds 0-{args.seeds - 1}; {time.strftime('%Y-%m-%d %H:%M')}"
    )
    loops = args.loops.split(",")
    if "fastai" in loops and not args.fastai_python:
        parser.error("the fastai loop needs --fastai-python (a Python whose environment has fastai)")
    runs = {name: fastai_loop(args.fastai_python) if name == "fastai" else RUNS[name] for name in loops}
    found: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for epochs in [int(e) for e in args.epochs.split(",")]:
        for seed in range(args.seeds):
            for name, run in runs.items():
                found.setdefault((name, epochs), []).append(run(dataset.train, test, epochs, seed, args.threads))
                accuracy, seconds = found[(name, epochs)][-1]
                print(f"  {name} {epochs} epochs seed {seed}: {accuracy:.4f} in {seconds:.2f} s", flush=True)
    targets = [float(t) for t in args.targets.split(",")]
    print("\n| loop | epochs | accuracy median | min | max | " + " | ".join(f"seeds >= {t}" for t in targets)
          + " | training s median (min-max) |")  # fmt: skip
    print("| --- " * (6 + len(targets)) + "|")
    for (name, epochs), rows in found.items():
        accuracies, seconds = [a for a, _ in rows], [s for _, s in rows]
        hits = " | ".join(f"{sum(a >= t for a in accuracies)}/{len(rows)}" for t in targets)
        print(
            f"| {name} | {epochs} | {statistics.median(accuracies):.4f} | {min(accuracies):.4f} | "
            f"{max(accuracies):.4f} | {hits} | {statistics.median(seconds):.2f} ({min(seconds):.2f}-{max(seconds):.2f}) |"
        )


if __name__ == "__main__":
    main()
