"""Images per second for training and inference, per model, on this machine's CPU.

Training: `Learner.fit` with the model's default recipe (batch size, augmentation, schedule) on
the offline mirror's 10,000 digits, one epoch after a warm-up epoch, validation excluded.
Inference: eval-mode forward passes over the official test set's 10,000 digits, in chunks of 2,048.
Median of several runs.

    .venv/bin/python bench/bench_throughput.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from digitlab.artifacts.inference import model_outputs
from digitlab.config import Settings
from digitlab.data.loading import train_and_valid
from digitlab.train.callbacks import ProgressCB
from digitlab.train.learner import Callback, CancelEpochException
from digitlab.train.recipe import TrainConfig, build_learner


class TrainOnlyCB(Callback):
    """Skip the validation pass: only training is timed."""

    order = -20

    def before_epoch(self) -> None:
        if not self.learn.training:
            raise CancelEpochException()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    dataset, valid, _ = train_and_valid("mnist", "../shared/data/mnist-test", Settings.from_env(), lambda m: None)
    print(
        f"# {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"train {len(dataset.train):,} digits, infer {len(valid):,}"
    )
    print("| model | batch size | train images/s | inference images/s |")
    print("| --- | --- | --- | --- |")
    for name in ("linear", "simple_net", "cnn"):
        train_rates, infer_rates = [], []
        for repeat in range(args.repeats):
            learn, config, _, norm = build_learner(
                TrainConfig(model=name, seed=repeat), dataset.train, valid, progress=False
            )
            learn.remove_cbs([cb for cb in learn.cbs if isinstance(cb, ProgressCB)])
            learn.add_cbs([TrainOnlyCB()])
            learn.fit(1)  # warm-up: first-call allocations
            started = time.perf_counter()
            learn.fit(1)
            train_rates.append(len(dataset.train) / (time.perf_counter() - started))
            model = learn.model.eval()
            model_outputs(model, valid.images[:2048], norm)
            started = time.perf_counter()
            model_outputs(model, valid.images, norm)
            infer_rates.append(len(valid) / (time.perf_counter() - started))
        print(
            f"| {name} | {config.bs} | {statistics.median(train_rates):,.0f} | {statistics.median(infer_rates):,.0f} |"
        )


if __name__ == "__main__":
    main()
