"""The GPU issue's measurements in one command: start-up, training and inference images/s against a
hand-written eager loop, time to >= 0.990 and >= 0.995 on the official test set, and the anchors.

On a CUDA machine (after scripts/pack-gpu-data.sh here, with .gpu-data carried there):

    PYTHONPATH=src DIGITLAB_HOME=.gpu-data/home DIGITLAB_OFFLINE=1 \\
        python3 bench/bench_gpu.py --test-set .gpu-data/mnist-test --anchors .gpu-data/gpu-anchors

On a CPU, to check that it runs (a tiny setting, not a measurement of the GPU path):

    .venv/bin/python bench/bench_gpu.py --device cpu --quick

Sections (Markdown on stdout, and --out FILE):
1. start-up: `digitlab train` with the device's default recipe in a fresh process, its wall time
   beyond `import torch` (the issue's goal: <= 5 s on CUDA), `startup_seconds` and its phases.
2. training images/s per epoch (median of the epochs after the first; the first holds the capture):
   a hand-written eager loop (randperm slices, torch.optim.SGD foreach, no augmentation), digitlab's
   Learner with --cuda-graphs off and with the graph, both with the recipe's augmentation; the ratio
   of each to the eager loop, in the same run. Inference images/s: the Predictor on the test set.
3. time to accuracy: every epoch budget x every seed, one-cycle over the whole budget; the time to a
   target is the smallest budget at which every seed reached it. Training seconds are the training
   passes alone, without the graph's capture (its own column) and validation (its own column).
4. the anchors (../shared/gpu-anchors: gpu_graphed.py --augment, gpu_floor.py at batch 512), run
   in this same process's machine, one after the other, with their tables as they print them and
   digitlab's graphed epoch against the anchor's at batch 512. They need CUDA; elsewhere they are
   skipped, saying so.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from bench_time_to_accuracy import hardware  # beside this file (python puts the script's folder on the path)
from digitlab.artifacts.inference import model_outputs
from digitlab.config import Settings
from digitlab.data.digits import Digits
from digitlab.data.loading import train_and_valid
from digitlab.models import build_model
from digitlab.train.recipe import TrainConfig, build_learner, resolve_device, train

TEST_SET = "../shared/data/mnist-test"
ANCHORS = "../shared/gpu-anchors"
# the anchors import digitlab's modules by their names at the time they were written
ANCHOR_SHIM = (
    "import runpy, sys; import digitlab.train.recipe as r, digitlab.train.augment as a; "
    "sys.modules['digitlab.training'] = r; sys.modules['digitlab.augment'] = a; "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def startup(device: str, test_set: str, epochs: int | None, data: str = "mnist") -> list[str]:
    """`digitlab train --json` in fresh processes: wall time, beyond `import torch`, and its start-up phases."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True, env=env)
    torch_import = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "digitlab", "train", "--model", "cnn", "--data", data, "--valid", test_set]
        command += ["--device", device, "--out", f"{out}/run", "--json", "--quiet"]
        command += ["--epochs", str(epochs)] if epochs else []
        t = time.perf_counter()
        done = subprocess.run(command, check=True, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t
    result = json.loads(done.stdout)
    phases = ", ".join(f"{k} {v:.2f}" for k, v in result["startup"].items())
    return [
        "| what | seconds |",
        "| --- | --- |",
        f"| `python -c 'import torch'` (fresh process) | {torch_import:.2f} |",
        f"| `digitlab train --model cnn --data {data} --device {device}` ({result['recipe']} recipe, "
        f"{result['epochs']} epochs, {result['cuda_graphs']}), wall | {wall:.2f} |",
        f"| ... beyond `import torch` | {wall - torch_import:.2f} |",
        f"| ... startup_seconds ({phases}) | {result['startup_seconds']:.2f} |",
        f"| ... fit_seconds (training and validation, capture included) | {result['fit_seconds']:.2f} |",
        f"| accuracy on the test set | {result['accuracy']:.4f} |",
    ]


def eager_loop(train_digits: Digits, device: str, bs: int, epochs: int) -> list[float]:
    """The hand-written floor: seconds of each epoch's training pass (whole batches, constant lr)."""
    torch.manual_seed(0)
    model = build_model("cnn", n_out=10, width=16).to(device).to(memory_format=torch.channels_last)
    x = train_digits.images.to(device).float().div_(255).unsqueeze(1)
    x = ((x - x.mean()) / x.std()).contiguous(memory_format=torch.channels_last)
    y = train_digits.labels.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, foreach=True)
    n, times = len(x), []
    for _ in range(epochs):
        sync(device)
        t = time.perf_counter()
        perm = torch.randperm(n, device=device)
        for i in range(0, n - bs + 1, bs):
            idx = perm[i : i + bs]
            loss = F.cross_entropy(model(x[idx]), y[idx], label_smoothing=0.1)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=False)
        sync(device)
        times.append(time.perf_counter() - t)
    return times


def learner_epochs(train_digits: Digits, valid: Digits, config: TrainConfig, said: list[str]) -> list[float]:
    """digitlab's Learner: each epoch's training seconds (RecorderCB; the first holds any capture).

    said: gets the CUDA-graph callback's status (what really ran)."""
    learn = build_learner(config, train_digits, valid, progress=False).learn
    learn.fit(config.epochs or 1)
    graph = getattr(learn, "cuda_graph", None)
    said.append(graph.status if graph is not None else "eager: --cuda-graphs off")
    return [row["train_seconds"] for row in learn.recorder.history]


def throughput(train_digits: Digits, valid: Digits, device: str, epochs: int, rounds: int) -> list[str]:
    recipe = TrainConfig(model="cnn", device=device).resolved(len(train_digits))
    bs = recipe.bs or 64
    said: list[str] = []  # the graphed variant's status: "graphed ..." on CUDA, "eager: why" elsewhere
    variants: dict[str, Callable[[], list[float]]] = {
        "hand-written eager loop (no augmentation)": lambda: eager_loop(train_digits, device, bs, epochs),
        "digitlab, --cuda-graphs off": lambda: learner_epochs(
            train_digits, valid, TrainConfig(model="cnn", device=device, epochs=epochs, cuda_graphs="off"), []
        ),
        "digitlab, --cuda-graphs auto": lambda: learner_epochs(
            train_digits, valid, TrainConfig(model="cnn", device=device, epochs=epochs), said
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            times[name] += run()[1:]  # the first epoch warms up (allocator, cuDNN, the graph's capture)
    floor = statistics.median(times["hand-written eager loop (no augmentation)"])
    n = len(train_digits)
    rows = [
        f"batch {bs} ({recipe.recipe} recipe); median of {rounds} x {epochs - 1} epochs after a first one",
        "",
        "| variant | training s per epoch (min-max) | images/s | vs the eager loop |",
        "| --- | --- | --- | --- |",
    ]
    for name, ts in times.items():
        m = statistics.median(ts)
        name += f" ({said[-1]})" if name.endswith("auto") else ""
        rows.append(f"| {name} | {m:.4f} ({min(ts):.4f}-{max(ts):.4f}) | {n / m:,.0f} | {m / floor:.2f}x |")
    return rows


def inference(train_digits: Digits, valid: Digits, device: str, rounds: int) -> list[str]:
    """Images/s of the Predictor's path (model_outputs: chunks of 512, one copy back) on the test set."""
    result = train(TrainConfig(model="cnn", device=device, epochs=1), train_digits, valid, progress=False)
    times = []
    for _ in range(rounds + 1):
        t = time.perf_counter()
        model_outputs(result.learner.model, valid.images, result.normalization, device)  # waits at the end
        times.append(time.perf_counter() - t)
    m = statistics.median(times[1:])
    return [f"inference (the Predictor's model_outputs, chunks of 512): {len(valid) / m:,.0f} images/s ({m:.4f} s)"]


def time_to_accuracy(
    train_digits: Digits, valid: Digits, device: str, budgets: list[int], seeds: int, targets: list[float]
) -> list[str]:
    rows = [
        "| epochs | accuracy median (min-max) | " + " | ".join(f"seeds >= {t}" for t in targets) + " | training s "
        "median (min-max) | capture s median | validation s median |",
        "| --- | --- | " + " | ".join("---" for _ in targets) + " | --- | --- | --- |",
    ]
    reached: dict[float, tuple[int, list[float]]] = {}
    for epochs in budgets:
        accs, trains, captures, valids = [], [], [], []
        for seed in range(seeds):
            config = TrainConfig(model="cnn", device=device, epochs=epochs, seed=seed)
            result = train(config, train_digits, valid, progress=False)
            graph = getattr(result.learner, "cuda_graph", None)
            capture = graph.capture_seconds if graph is not None else 0.0
            history = result.history
            accs.append(history[-1]["batch_accuracy"])
            trains.append(sum(row["train_seconds"] for row in history) - capture)
            captures.append(capture)
            valids.append(sum(row["seconds"] - row["train_seconds"] for row in history))
        hits = [sum(a >= t for a in accs) for t in targets]
        rows.append(
            f"| {epochs} | {statistics.median(accs):.4f} ({min(accs):.4f}-{max(accs):.4f}) | "
            + " | ".join(f"{h}/{seeds}" for h in hits)
            + f" | {statistics.median(trains):.3f} ({min(trains):.3f}-{max(trains):.3f}) | "
            f"{statistics.median(captures):.3f} | {statistics.median(valids):.3f} |"
        )
        print(rows[-1], file=sys.stderr, flush=True)
        for target, h in zip(targets, hits):
            if h == seeds and target not in reached:
                reached[target] = (epochs, trains)
    rows.append("")
    for target in targets:
        if target in reached:
            epochs, ts = reached[target]
            rows.append(
                f"time to >= {target}: **{statistics.median(ts):.3f} s** of training (median of {seeds} seeds, "
                f"{min(ts):.3f}-{max(ts):.3f}), {epochs} epochs, every seed reached it"
            )
        else:
            rows.append(f"time to >= {target}: no budget tried brought every seed there")
    return rows


def anchors(folder: Path, test_set: str, device: str, ours_bs512: float | None) -> list[str]:
    if not device.startswith("cuda"):
        return [f"skipped: the anchors are CUDA scripts (this run is on {device})"]
    rows: list[str] = []
    for script, args, env in (
        ("gpu_graphed.py", [test_set, "--augment"], {}),
        ("gpu_floor.py", [device, test_set, "512"], {"ROUNDS": "3"}),
    ):
        path = folder / script
        if not path.exists():
            rows.append(f"{script}: not found in {folder}")
            continue
        done = subprocess.run(
            [sys.executable, "-c", ANCHOR_SHIM, str(path), *args],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
        )
        rows += [f"### {script} {' '.join(args)}", "", done.stdout.strip() or "(no output)", ""]
        if done.returncode != 0:
            rows.append(f"{script} failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
        match = re.search(r"^\| 512 \| ([0-9.]+) \|", done.stdout, re.M)
        if script == "gpu_graphed.py" and match and ours_bs512:
            anchor = float(match.group(1))
            rows.append(
                f"digitlab graphed at batch 512: {ours_bs512:.4f} s per epoch against the anchor's {anchor:.4f} "
                f"(both with augmentation): {ours_bs512 / anchor:.2f}x"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--test-set", default=TEST_SET, help=f"the official test set's folder (default: {TEST_SET})")
    parser.add_argument("--anchors", default=ANCHORS, help=f"the anchors' folder (default: {ANCHORS})")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", default="10,12,14,16,20,30", help="epoch budgets for the time to accuracy")
    parser.add_argument("--quick", action="store_true", help="a tiny setting: 2,000 digits, 2 seeds, 1-2 epochs")
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    args = parser.parse_args()
    device = resolve_device(args.device)
    dataset, valid, _ = train_and_valid("mnist", args.test_set, Settings.from_env(), lambda message: None)
    train_digits = dataset.train
    seeds, budgets, rounds, epochs = args.seeds, [int(e) for e in args.epochs.split(",")], 3, 4
    if args.quick:
        some = torch.randperm(len(train_digits), generator=torch.Generator().manual_seed(0))[:2000]  # every class
        train_digits = Digits(train_digits.images[some], train_digits.labels[some], train_digits.classes)
        seeds, budgets, rounds, epochs = 2, [1, 2], 1, 2
    lines = [
        f"# bench_gpu: {hardware(device)}; torch {torch.__version__}; {len(train_digits):,} training digits, "
        f"{len(valid):,} test digits ({args.test_set}); {time.strftime('%Y-%m-%d %H:%M')}"
        + (" (--quick: a check that it runs, not a measurement)" if args.quick else ""),
        "",
        "## Start-up",
        "",
        *(startup(device, args.test_set, 1, "mnist_sample") if args.quick else startup(device, args.test_set, None)),
        "",
        "## Training and inference images/s",
        "",
    ]
    rows = throughput(train_digits, valid, device, epochs, rounds)
    graphed_rows = [r for r in rows if r.startswith("| digitlab, --cuda-graphs auto (graphed")]
    graphed = float(graphed_rows[0].split("|")[2].split()[0]) if graphed_rows else None
    lines += [*rows, "", *inference(train_digits, valid, device, rounds), ""]
    lines += ["## Time to accuracy", "", *time_to_accuracy(train_digits, valid, device, budgets, seeds, [0.990, 0.995])]
    bs = TrainConfig(model="cnn", device=device).resolved(len(train_digits)).bs
    ours = graphed if bs == 512 else None
    lines += ["", "## Anchors", "", *anchors(Path(args.anchors), args.test_set, device, ours)]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
