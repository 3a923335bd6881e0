"""Per-epoch time of digitlab's Learner.fit against two plain PyTorch loops, same data and model.

(a) TensorDataset + torch.utils.data.DataLoader(shuffle=True) + torch.optim.SGD
(b) a hand-written loop slicing two tensors by randperm
(c) digitlab: DataLoaders.from_tensors + Learner(RecorderCB, DivergenceGuardCB, default_cbs=False), digitlab's SGD

Each epoch is a training pass and a validation pass (loss and accuracy), as the Learner does.
Data: the offline mirror's 3s and 7s (2,102) to train, the official test set's 3s and 7s
(2,038) to validate, as in `digitlab train --valid ../shared/data/mnist-test`.

    .venv/bin/python bench/bench_loop.py [--epochs 20] [--repeats 7] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from digitlab.config import Settings
from digitlab.data.loading import train_and_valid
from digitlab.models import build_model
from digitlab.train.callbacks import DivergenceGuardCB, RecorderCB
from digitlab.train.dataloader import DataLoaders
from digitlab.train.learner import Learner
from digitlab.train.losses import batch_accuracy, mnist_loss
from digitlab.train.optim import SGD
from digitlab.train.recipe import targets_for

LR = {"linear": 1.0, "simple_net": 0.1}


def data():
    dataset, valid, _ = train_and_valid(
        "mnist_sample", "../shared/data/mnist-test", Settings.from_env(), lambda m: None
    )
    prep = lambda d: (d.images.float().div(255).reshape(len(d), 784), targets_for(d.labels, True))  # noqa: E731
    return prep(dataset.train), prep(valid)


def torch_dataloader_loop(model, train, valid, epochs, bs, lr):
    """(a): what a PyTorch tutorial writes."""
    from torch.utils.data import DataLoader, TensorDataset

    train_dl = DataLoader(TensorDataset(*train), batch_size=bs, shuffle=True)
    valid_dl = DataLoader(TensorDataset(*valid), batch_size=2 * bs)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(epochs):
        for xb, yb in train_dl:
            loss = mnist_loss(model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad()
        with torch.no_grad():
            stats = [(mnist_loss(p := model(xb), yb), batch_accuracy(p, yb)) for xb, yb in valid_dl]
        _ = [s[1].item() for s in stats]


def randperm_loop(model, train, valid, epochs, bs, lr):
    """(b): the fastest plain loop: whole tensors, randperm, slices."""
    (x, y), (vx, vy) = train, valid
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        xs, ys = x[perm], y[perm]
        for i in range(0, len(x), bs):
            loss = mnist_loss(model(xs[i : i + bs]), ys[i : i + bs])
            loss.backward()
            opt.step()
            opt.zero_grad()
        with torch.no_grad():
            stats = [
                (mnist_loss(p := model(vx[i : i + 2 * bs]), vy[i : i + 2 * bs]), batch_accuracy(p, vy[i : i + 2 * bs]))
                for i in range(0, len(vx), 2 * bs)
            ]
        _ = [s[1].item() for s in stats]


def digitlab_learner(model, train, valid, epochs, bs, lr):
    """(c): digitlab as `digitlab train --threads N` runs it, minus the printed table: its own callbacks
    only (the notebook Learner's defaults add the mentor and the thread policy, which would choose its
    own thread count and sample the machine's load for 0.05 s at the start of each fit)."""
    dls = DataLoaders.from_tensors(*train, *valid, batch_size=bs, seed=0)
    cbs = [RecorderCB(), DivergenceGuardCB()]
    Learner(dls, model, mnist_loss, opt_func=SGD, lr=lr, metrics=[batch_accuracy], cbs=cbs, default_cbs=False).fit(
        epochs
    )


LOOPS = {"a_torch_dataloader": torch_dataloader_loop, "b_randperm": randperm_loop, "c_digitlab": digitlab_learner}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--bs", type=int, default=256)
    parser.add_argument("--threads", default="1,2")
    args = parser.parse_args()
    train, valid = data()
    print(
        f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, python {platform.python_version()}, "
        f"train {len(train[0])}, valid {len(valid[0])}, bs {args.bs}, {args.epochs} epochs x {args.repeats} repeats"
    )
    print(
        "| model | threads | (a) torch DataLoader ms/epoch | (b) randperm ms/epoch | (c) digitlab ms/epoch | c/b | a/c |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in ("linear", "simple_net"):
        for threads in [int(t) for t in args.threads.split(",")]:
            torch.set_num_threads(threads)
            times = {loop: [] for loop in LOOPS}
            for repeat in range(args.repeats):
                for loop, fn in LOOPS.items():  # interleaved, so drift hits all three alike
                    torch.manual_seed(repeat)
                    model = build_model(name, n_out=1)
                    started = time.perf_counter()
                    fn(model, train, valid, args.epochs, args.bs, LR[name])
                    times[loop].append((time.perf_counter() - started) / args.epochs * 1000)
            med = {loop: statistics.median(t) for loop, t in times.items()}
            a, b, c = med["a_torch_dataloader"], med["b_randperm"], med["c_digitlab"]
            print(f"| {name} | {threads} | {a:.2f} | {b:.2f} | {c:.2f} | {c / b:.2f} | {a / c:.2f} |")


if __name__ == "__main__":
    main()
