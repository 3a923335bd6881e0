"""Photographing training digits for `train --photos`: milliseconds a digit, by thread count and load.

`digitlab.reading.photographed` draws each digit as a phone photo and cuts it out again with
`find_digits` (the crop `predict --number` reads). The thread counts alternate within each repetition,
beside 0 or 1 CPU-busy processes started and stopped here; the crops must be the same on every count.

    python bench/bench_photographing.py                 # 400 of the mirror's digits, 3 repetitions
    python bench/bench_photographing.py --n 1000 --reps 5 --loads 0 1 --threads 1 2
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

import torch

from digitlab.loading import load_dataset
from digitlab.reading.photographed import photographed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=400, help="digits photographed a run")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--loads", type=int, nargs="+", default=[0, 1], help="CPU-busy processes beside it")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    os.environ.setdefault("DIGITLAB_OFFLINE", "1")
    train = load_dataset("mnist", log=lambda _: None).train
    digits = train.images[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[: args.n]]
    torch.set_num_threads(1)  # the work is numpy's and PIL's; torch's few small ops stay on one thread
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"# torch {torch.__version__}, {args.n} digits a run, {args.reps} repetitions")
    print("| busy processes | threads | ms a digit, median (min-max) | kept |")
    print("| --- | --- | --- | --- |")
    for load in args.loads:
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(load)]
        try:
            times: dict[int, list[float]] = {t: [] for t in args.threads}
            reference = None
            for _ in range(args.reps):
                for threads in args.threads:  # alternated: a change in the machine's load falls on all alike
                    started = time.perf_counter()
                    crops, kept = photographed(digits, seed=0, threads=threads)
                    times[threads].append((time.perf_counter() - started) / args.n * 1000)
                    if reference is None:
                        reference = (crops, kept)
                    assert torch.equal(crops, reference[0]) and torch.equal(kept, reference[1]), "threads changed it"
            for threads, ms in times.items():
                kept_n = len(reference[1]) if reference is not None else 0
                print(f"| {load} | {threads} | {statistics.median(ms):.1f} ({min(ms):.1f}-{max(ms):.1f}) | {kept_n} |")
        finally:
            for process in busy:
                process.kill()


if __name__ == "__main__":
    main()
