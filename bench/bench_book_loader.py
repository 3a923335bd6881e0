"""The book's `DataLoader(list(zip(train_x, train_y)), batch_size=256)`: stacked once vs collated per item.

digitlab stacks a list of (x, y) tensor tuples into two tensors when the DataLoader is made, so
an epoch gathers rows instead of running Python for every image. The per-item path is the
same DataLoader given the same items as a tuple (which it does not stack): both yield the same
batches. Measured in one run, interleaved: one pass over the batches, and one `Learner.fit`
epoch of the book's `nn.Linear(28*28, 1)` (training + validation).

    .venv/bin/python bench/bench_book_loader.py [--repeats 7] [--epochs 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from torch import nn

from digitlab import SGD, DataLoader, DataLoaders, Learner, RecorderCB, batch_accuracy, load_dataset, mnist_loss


def book_dset(digits) -> list[tuple[torch.Tensor, torch.Tensor]]:  # the book's dset: (784,) float, (1,) int
    x = digits.float_images().view(-1, 28 * 28)
    return list(zip(x, (digits.labels == 0).long().unsqueeze(1)))


def one_pass(dl: DataLoader) -> float:
    started = time.perf_counter()
    for _ in dl:
        pass
    return time.perf_counter() - started


def fit_epochs(train: DataLoader, valid: DataLoader, epochs: int) -> float:
    torch.manual_seed(0)
    learn = Learner(
        DataLoaders(train, valid),
        nn.Linear(28 * 28, 1),
        mnist_loss,
        opt_func=SGD,
        lr=1.0,
        metrics=batch_accuracy,
        default_cbs=False,
    )
    learn.add_cbs([RecorderCB()])
    started = time.perf_counter()
    learn.fit(epochs)
    return (time.perf_counter() - started) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    data = load_dataset("mnist_sample", log=lambda m: None)
    train, valid = book_dset(data.train), book_dset(data.valid)
    results: dict[str, list[float]] = {
        "make stacked": [],
        "make per item": [],
        "pass stacked": [],
        "pass per item": [],
        "fit stacked": [],
        "fit per item": [],
    }
    for _ in range(args.repeats):
        for name, wrap in (("stacked", list), ("per item", tuple)):
            started = time.perf_counter()
            dl = DataLoader(wrap(train), batch_size=256)
            results[f"make {name}"].append(time.perf_counter() - started)
            results[f"pass {name}"].append(one_pass(dl))
            valid_dl = DataLoader(wrap(valid), batch_size=256)
            results[f"fit {name}"].append(fit_epochs(dl, valid_dl, args.epochs))
    med = {k: statistics.median(v) * 1000 for k, v in results.items()}
    print(
        f"# {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{len(train):,} training and {len(valid):,} validation images, median of {args.repeats}"
    )
    print("| path | make the DataLoader ms | one pass over the batches ms | Learner.fit ms/epoch |")
    print("| --- | --- | --- | --- |")
    for name in ("stacked", "per item"):
        print(f"| {name} | {med[f'make {name}']:.1f} | {med[f'pass {name}']:.2f} | {med[f'fit {name}']:.2f} |")
    print(
        f"per-item / stacked: pass {med['pass per item'] / med['pass stacked']:.1f}x, "
        f"fit {med['fit per item'] / med['fit stacked']:.1f}x"
    )


if __name__ == "__main__":
    main()
