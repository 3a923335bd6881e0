"""What the sandbox costs a teacher: `exercises check --all` on a class of honest students, sandboxed and not.

A class of N copies of the reference solution (tests/exercises/submissions/reference.py) is checked
with every exercise but train_mnist (it trains for up to a minute a student, alike in both modes, and
would only dilute the difference), once in bubblewrap's sandbox (the default) and once with --unsafe
(the child process as before isolation), alternating within each repetition so that a change in the
machine's load falls on both alike. Each run is a fresh `digitlab` process; the wall time is the
whole command's.

    python bench/bench_class_check.py                  # 20 students, 3 repetitions, no load
    python bench/bench_class_check.py --busy 1         # one CPU-busy process beside it
    git worktree add /tmp/before d453a63               # digitlab before the sandbox and the probes
    python bench/bench_class_check.py --before /tmp/before/src
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "exercises" / "submissions" / "reference.py"
MODES = {"sandbox": [], "unsafe (no sandbox)": ["--unsafe"]}


def one_run(folder: Path, names: list[str], extra: list[str], src: Path | None = None) -> float:
    """Seconds for one class check; `src`: run the digitlab found there instead of this one."""
    out = folder.parent / "report"
    command = [sys.executable, "-m", "digitlab", "exercises", "check", "--all", str(folder), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(src)} if src else None
    start = time.perf_counter()
    done = subprocess.run([*command, "--only", *names, *extra, "--quiet"], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"the check failed (exit {done.returncode}): {done.stderr[-2000:]}")
    shutil.rmtree(out)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--busy", type=int, default=0, help="CPU-busy processes beside the runs")
    parser.add_argument("--before", type=Path, help="the src folder of an older digitlab, run as a third mode")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from digitlab.exercises import exercises

    names = [n for n in exercises() if n != "train_mnist"]
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "class"
            folder.mkdir()
            for i in range(args.students):
                shutil.copy(REFERENCE, folder / f"student{i:02d}.py")
            if args.before:
                times["before"] = []
            for _ in range(args.reps):
                for mode, extra in MODES.items():
                    times[mode].append(one_run(folder, names, extra))
                if args.before:
                    times["before"].append(one_run(folder, names, [], args.before))
    finally:
        for p in spinners:
            p.kill()
    medians = {mode: statistics.median(t) for mode, t in times.items()}
    import torch

    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(), "torch": torch.__version__, "busy": args.busy,
        "students": args.students, "exercises": len(names), "runs": times, "median": medians,
        "sandbox / unsafe": medians["sandbox"] / medians["unsafe (no sandbox)"],
        **({"sandbox / before": medians["sandbox"] / medians["before"]} if args.before else {}),
    }  # fmt: skip
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
