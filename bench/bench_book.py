"""The chapter's numbers on the book's own data, through the book's one import line.

The official MNIST files (`../shared/data/mnist-train` and `mnist-test`, workspace and CI only)
rebuild fastai's MNIST_SAMPLE exactly; `DIGITLAB_MNIST_FILES` points `untar_data(URLs.MNIST_SAMPLE)`
at them. The cells are the book's call forms: pixel similarity, the linear Learner (10 epochs at
lr 1), simple_net (40 epochs at 0.1), and "Going Deeper" (cnn_learner, resnet18, one cycle at 0.1).
Each fit is timed, over seeds, with 1 thread and with torch's default. Prints Markdown for
BENCHMARKS.md.

    .venv/bin/python bench/bench_book.py [--seeds 3] [--threads 1,2] [--runs linear,simple_net,resnet18]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
os.environ.setdefault("DIGITLAB_MNIST_FILES", f"{SHARED / 'mnist-train'}{os.pathsep}{SHARED / 'mnist-test'}")
os.environ.setdefault("MPLBACKEND", "Agg")

from digitlab.all import *  # noqa: E402, F403  # the book's one line
from digitlab.all import (  # noqa: E402  # the same names, for the linters
    SGD,
    DataLoader,
    DataLoaders,
    F,
    Image,
    ImageDataLoaders,
    Learner,
    URLs,
    accuracy,
    batch_accuracy,
    cnn_learner,
    mnist_distance,
    mnist_loss,
    nn,
    resnet18,
    tensor,
    torch,
    untar_data,
)


def stack(folder: Path) -> torch.Tensor:
    return torch.stack([tensor(Image.open(o)) for o in sorted(folder.iterdir())]).float() / 255


def book_data(path: Path) -> dict[str, torch.Tensor]:
    return {f"{split}{d}": stack(path / split / d) for split in ("train", "valid") for d in "37"}


def pixel_similarity(t: dict[str, torch.Tensor]) -> tuple[float, float, float]:
    mean3, mean7 = t["train3"].mean(0), t["train7"].mean(0)

    def is_3(x: torch.Tensor) -> torch.Tensor:
        return mnist_distance(x, mean3) < mnist_distance(x, mean7)

    a3 = float(is_3(t["valid3"]).float().mean())
    a7 = float((1 - is_3(t["valid7"]).float()).mean())
    return a3, a7, (a3 + a7) / 2


def book_dls(t: dict[str, torch.Tensor]) -> DataLoaders:
    train_x = torch.cat([t["train3"], t["train7"]]).view(-1, 28 * 28)
    train_y = tensor([1] * len(t["train3"]) + [0] * len(t["train7"])).unsqueeze(1)
    valid_x = torch.cat([t["valid3"], t["valid7"]]).view(-1, 28 * 28)
    valid_y = tensor([1] * len(t["valid3"]) + [0] * len(t["valid7"])).unsqueeze(1)
    return DataLoaders(
        DataLoader(list(zip(train_x, train_y)), batch_size=256), DataLoader(list(zip(valid_x, valid_y)), batch_size=256)
    )


def fit(run: str, path: Path, dls: DataLoaders) -> tuple[float, float]:
    """(accuracy after the last epoch, seconds of fitting) for one of the book's fits."""
    if run == "resnet18":
        images = ImageDataLoaders.from_folder(path)
        learn = cnn_learner(images, resnet18, pretrained=False, loss_func=F.cross_entropy, metrics=accuracy, cbs=[])
        start = time.perf_counter()
        learn.fit_one_cycle(1, 0.1)
    else:
        model = (
            nn.Linear(28 * 28, 1) if run == "linear" else nn.Sequential(nn.Linear(784, 30), nn.ReLU(), nn.Linear(30, 1))
        )
        learn = Learner(dls, model, opt_func=SGD, loss_func=mnist_loss, metrics=batch_accuracy)  # no table on a pipe
        start = time.perf_counter()
        learn.fit(10, lr=1.0) if run == "linear" else learn.fit(40, 0.1)
    return float(learn.recorder.values[-1][2]), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", default=f"1,{torch.get_num_threads()}")
    parser.add_argument("--runs", default="linear,simple_net,resnet18")
    args = parser.parse_args()
    path = untar_data(URLs.MNIST_SAMPLE)
    t = book_data(path)
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"python {platform.python_version()}; {args.seeds} seeds; data: {path.name} "
        f"({len(t['train3']) + len(t['train7']):,} train, {len(t['valid3']) + len(t['valid7']):,} valid)"
    )
    print("pixel similarity (3s, 7s, mean): " + " / ".join(f"{a:.4f}" for a in pixel_similarity(t)))
    print("| fit | threads | accuracy median (min-max) | seconds median (min-max) |")
    print("| --- | --- | --- | --- |")
    dls = book_dls(t)
    for run in args.runs.split(","):
        for threads in (int(n) for n in args.threads.split(",")):
            torch.set_num_threads(threads)
            results = []
            for seed in range(args.seeds):
                torch.manual_seed(seed)
                results.append(fit(run, path, dls))
            accs, secs = [r[0] for r in results], [r[1] for r in results]
            print(
                f"| {run} | {threads} | {statistics.median(accs):.4f} ({min(accs):.4f}-{max(accs):.4f}) "
                f"| {statistics.median(secs):.1f} ({min(secs):.1f}-{max(secs):.1f}) |",
                flush=True,
            )


if __name__ == "__main__":
    main()
