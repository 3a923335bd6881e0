"""Learning from corrections: 20 continental 7s teach a trained CNN the style; does it forget anything?

A CNN trained with `digitlab train --model cnn --data mnist` (MODEL) is fine-tuned the way
`digitlab train --data my-digits --init MODEL` does it (`digitlab.jobs.fine_tune`), once per seed,
on 20 corrections: the first 20 training 7s with a bar and a serif drawn on (`continental_sevens`).
Measured on the official test set (`../shared/data/mnist-test`): accuracy on all 10,000 digits and
the share of its 1,028 7s, drawn the continental way, read as 7, before and after; median over seeds.

    .venv/bin/python bench/bench_corrections.py MODEL [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

import digitlab
from digitlab.config import Settings
from digitlab.core.progress import quiet_log
from digitlab.data.corrections import save_correction
from digitlab.data.digits import with_holdout
from digitlab.data.formats.idx import load_idx_folder
from digitlab.data.loading import load_dataset
from digitlab.data.styles import continental_sevens
from digitlab.jobs.fine_tune import plan
from digitlab.jobs.train_run import train_run
from digitlab.predict.predictor import Predictor
from digitlab.train.recipe import TrainJob


def read_as_seven(predictor: Predictor, images: torch.Tensor) -> float:
    return sum(label == "7" for label in predictor.predict(images, abstain=False).labels) / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(2)
    test = load_idx_folder(Path("../shared/data/mnist-test")).train
    styled = continental_sevens(test.images[test.labels == 7])
    train = with_holdout(load_dataset("mnist", log=quiet_log)).train
    before = Predictor.load(args.model)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        mine = Path(tmp) / "my-digits"
        for digit in continental_sevens(train.images[train.labels == 7][:20]):
            save_correction(mine, digit, "7")
        for seed in args.seeds:
            fine = plan(args.model, str(mine), Settings.from_env(), quiet_log, {"seed": seed})
            started = time.perf_counter()
            run = Path(tmp) / f"run{seed}"
            train_run(TrainJob(fine.config, fine.dataset.train, fine.valid, progress=False, init=fine.init), run)
            after = Predictor.load(run)
            rows.append(
                {
                    "seconds": time.perf_counter() - started,
                    "test after": after.evaluate(test)["accuracy"],
                    "styled after": read_as_seven(after, styled),
                }
            )
            print(f"seed {seed}: {rows[-1]}; {fine.describe()}", flush=True)
    print(
        f"\nmachine: {platform.machine()}, python {platform.python_version()}, torch {torch.__version__}, "
        f"digitlab {digitlab.__version__}; seeds {args.seeds}"
    )
    print("| | before | after (median) | min | max |")
    print("| --- | --- | --- | --- | --- |")
    for key, now in (("test", before.evaluate(test)["accuracy"]), ("styled", read_as_seven(before, styled))):
        values = [r[f"{key} after"] for r in rows]
        print(f"| {key} | {now:.4f} | {statistics.median(values):.4f} | {min(values):.4f} | {max(values):.4f} |")
    print(f"fine-tuning seconds (median): {statistics.median(r['seconds'] for r in rows):.1f}")


if __name__ == "__main__":
    main()
