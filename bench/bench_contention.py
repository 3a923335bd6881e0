"""Training on a busy machine: torch's default threads, one thread and `--threads auto`, side by side.

For each load (0, 1 or 2 CPU-busy processes beside the run, started and stopped here), each model and
each thread setting, `digitlab train` runs in a fresh process and its training seconds (`fit_seconds`
from --json: the epochs, validation included, not the start-up) are recorded. The settings alternate
within each repetition, so a change in the machine's own load falls on all of them alike.

    python bench/bench_contention.py                       # 3 repetitions, cnn and simple_net
    python bench/bench_contention.py --reps 5 --loads 0 1 --out results.jsonl
    python bench/bench_contention.py --late 4 --loads 1 --models cnn --epochs 8
                        # busy mid-run: the load starts 4 s after each run's process

Needs the offline mirror's mnist_sample in the cache (`digitlab data get mnist_sample`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Short runs of the chapter's models: long enough to be training, short enough to repeat under load
MODELS = {"cnn": ["--model", "cnn", "--epochs", "3"], "simple_net": ["--model", "simple_net", "--epochs", "40"]}
# setting: (train's arguments, environment): OpenMP's passive wait parks idle threads instead of spinning
SETTINGS = {
    "torch default": ([], {}),
    "1 thread": (["--threads", "1"], {}),
    "auto": (["--threads", "auto"], {}),
    "passive wait": ([], {"OMP_WAIT_POLICY": "PASSIVE"}),
    "auto + passive": (["--threads", "auto"], {"OMP_WAIT_POLICY": "PASSIVE"}),
}
TIMEOUT = 300  # seconds per run: torch's default threads took up to 117 s under load (issue 22)


def spinners(n: int) -> list[subprocess.Popen[bytes]]:
    """n processes that each keep a core busy (what a browser tab, a notebook or a build does)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def one_run(model: str, setting: str, out: Path, late: tuple[int, float] | None = None,
            epochs: int | None = None) -> dict[str, object]:  # fmt: skip
    """One `digitlab train`; late: (n, seconds): n busy processes start that long after the process does."""
    extra, setting_env = SETTINGS[setting]
    argv = [sys.executable, "-m", "digitlab", "train", *MODELS[model], *extra]
    argv += ["--data", "mnist_sample", "--out", str(out), "--json", "--quiet"]
    if epochs is not None:
        argv += ["--epochs", str(epochs)]  # the last --epochs wins
    env = {**os.environ, "DIGITLAB_OFFLINE": "1", **setting_env}
    run = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    busy: list[subprocess.Popen[bytes]] = []
    try:
        if late is not None:
            time.sleep(late[1])  # after the process starts; its startup_seconds say when the fit began
            busy = spinners(late[0])
        stdout, stderr = run.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        run.kill()
        run.communicate()
        return {"fit_seconds": None, "note": f"over {TIMEOUT} s"}
    finally:
        for p in busy:
            p.kill()
            p.wait()
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {stderr[-500:]}")
    answer = json.loads(stdout)
    return {k: answer[k] for k in ("fit_seconds", "startup_seconds", "accuracy", "threads", "threads_why")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--loads", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--out", type=Path, default=Path("bench-contention.jsonl"))
    parser.add_argument("--late", type=float, help="start the busy processes this many seconds into each run")
    parser.add_argument("--epochs", type=int, help="instead of each model's epochs here")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    args = parser.parse_args()
    import torch

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}")
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp, args.out.open("a") as log:
        for load in args.loads:
            busy = spinners(load) if args.late is None else []
            time.sleep(1 if busy else 0)  # spinning before the first run
            try:
                for rep in range(args.reps):
                    for model in args.models:
                        for setting in args.settings:
                            out = Path(tmp) / f"{load}-{rep}-{model}-{setting.replace(' ', '_')}"
                            row = {"load": load, "rep": rep, "model": model, "setting": setting}
                            late = (load, args.late) if args.late is not None else None
                            row.update(one_run(model, setting, out, late, args.epochs))
                            rows.append(row)
                            log.write(json.dumps(row) + "\n")
                            log.flush()
                            print(json.dumps(row), flush=True)
            finally:
                for p in busy:
                    p.kill()
                    p.wait()
    print("\n| busy processes | model | setting | training s median | min-max | threads chosen |")
    print("| --- | --- | --- | --- | --- | --- |")
    for load in args.loads:
        for model in args.models:
            for setting in args.settings:
                mine = [r for r in rows if (r["load"], r["model"], r["setting"]) == (load, model, setting)]
                secs = [float(r["fit_seconds"]) for r in mine if r["fit_seconds"] is not None]  # type: ignore[arg-type]
                threads = sorted({str(r.get("threads")) for r in mine})
                median = f"{statistics.median(secs):.2f}" if secs else "-"
                spread = f"{min(secs):.2f}-{max(secs):.2f}" if secs else "-"
                timeouts = len(mine) - len(secs)
                note = f" ({timeouts} over {TIMEOUT} s)" if timeouts else ""
                print(f"| {load} | {model} | {setting} | {median}{note} | {spread} | {', '.join(threads)} |")


if __name__ == "__main__":
    main()
