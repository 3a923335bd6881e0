"""How long a command takes to answer when it runs no model: `--help` of each command, and `data list`.

Each is a fresh `digitlab` process (the console script's Python, as a user types it); the wall time of
the whole process, median of --reps runs. The issue's target: every `--help` under 0.5 s here.

    python bench/bench_startup.py              # 5 runs each
    python bench/bench_startup.py --reps 9 --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = ["", "data", "baseline", "show", "train", "evaluate", "demo", "report", "explain", "predict", "serve",
            "exercises"]  # fmt: skip


def seconds(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "digitlab", *argv], capture_output=True, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs = {f"{c} --help".strip(): [*([c] if c else []), "--help"] for c in COMMANDS}
    runs["data list"] = ["data", "list"]
    runs["exercises list"] = ["exercises", "list"]
    runs["exercises show"] = ["exercises", "show", "mnist_distance"]
    runs["python -c pass"] = []  # the interpreter alone, for scale
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.reps):  # round-robin: a change in the machine's load falls on every command alike
        for name, argv in runs.items():
            if name == "python -c pass":
                start = time.perf_counter()
                subprocess.run([sys.executable, "-c", "pass"], check=True)
                times[name].append(time.perf_counter() - start)
            else:
                times[name].append(seconds(argv))
    medians = {name: round(statistics.median(t), 3) for name, t in times.items()}
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "python": platform.python_version(),
              "digitlab": str(Path(__file__).resolve().parents[1]), "median_seconds": medians}  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=1))
        return
    for name, value in medians.items():
        print(f"{name:<22} {value:6.3f} s")


if __name__ == "__main__":
    main()
