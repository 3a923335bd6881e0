"""A line reader, prototype: can a network that reads a whole line (conv + BiGRU + CTC), trained on lines
made from MNIST training digits, read touching digits that cutting cannot? Not used by digitlab yet: it
measures the design issue 26 proposes before it is built into `train`, `predict` and the page.

Lines: 3-6 training digits (4 for testing), each cropped to its ink, 18-28 px high in a 32 x 192 line,
widths +-15%, random heights on the line, gaps of -0.2..0.5 of a digit's height when training;
"spaced" tests use 0.08..0.6, "touching" -0.1..0.03 (bench_numbers.py's ranges), ink combined by
max. Clean lines, not photos. Greedy CTC decoding; a line is right when all its digits are, in order.

    .venv/bin/python bench/line_reader_prototype.py --steps 3000   # ~15 min on 2 threads here
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from digitlab.data.formats.idx import load_idx_folder

H, W = 32, 192  # a line's pixels; the reader sees W / 4 = 48 steps


def crop(d):
    cols = np.nonzero(d.max(0) > 30)[0]
    rows = np.nonzero(d.max(1) > 30)[0]
    return d[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def line(xs, ys, rng, n, gap_range):
    """(H, W) float32 ink 0..255 and the labels of the digits that fit."""
    img = np.zeros((H, W), np.float32)
    idx = rng.integers(0, len(xs), n)
    x = int(rng.integers(0, 12))
    labels = []
    for i in idx:
        d = crop(xs[i]).astype(np.float32)
        h = int(rng.integers(18, 29))
        w = max(2, round(d.shape[1] * h / d.shape[0] * rng.uniform(0.85, 1.15)))
        t = torch.from_numpy(d)[None, None]
        d = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy()
        top = int(rng.integers(0, H - h + 1))
        if x + w > W:
            break
        region = img[top : top + h, x : x + w]
        np.maximum(region, d, out=region)
        labels.append(int(ys[i]))
        gap = rng.uniform(*gap_range) * h
        x = max(x + 1, round(x + w + gap))
    return img, labels


def batch(xs, ys, rng, size, gap_range=(-0.2, 0.5), n_range=(3, 7)):
    """(size, 1, H, W) float inputs in 0..1 and each line's labels."""
    imgs, labels = [], []
    for _ in range(size):
        img, lab = line(xs, ys, rng, int(rng.integers(*n_range)), gap_range)
        imgs.append(img)
        labels.append(lab)
    return torch.from_numpy(np.stack(imgs))[:, None] / 255.0, labels


class Reader(nn.Module):
    def __init__(self, c=32, hidden=96):
        super().__init__()

        def block(i, o, pool):
            return nn.Sequential(
                nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(pool)
            )

        self.convs = nn.Sequential(
            block(1, c, 2), block(c, 2 * c, 2), block(2 * c, 4 * c, (2, 1)), block(4 * c, 4 * c, (2, 1))
        )
        self.rnn = nn.GRU(4 * c * 2, hidden, bidirectional=True, batch_first=True)
        self.out = nn.Linear(2 * hidden, 11)  # 0 = blank, 1..10 = digits

    def forward(self, x):  # (N, 1, 32, 192) -> (T=48, N, 11) log-probs
        f = self.convs(x)  # (N, 4c, 2, 48)
        f = f.flatten(1, 2).transpose(1, 2)  # (N, 48, 8c)
        s, _ = self.rnn(f)
        return self.out(s).log_softmax(-1).transpose(0, 1)


def decode(logp):
    best = logp.argmax(-1).transpose(0, 1)  # (N, T)
    out = []
    for row in best.tolist():
        seq, prev = [], 0
        for k in row:
            if k != prev and k != 0:
                seq.append(k - 1)
            prev = k
        out.append(seq)
    return out


def evaluate(model, test, gap_range, n=500, seed=1):
    """Exact-match accuracy on n 4-digit lines of test digits (the same lines at every call)."""
    r = np.random.default_rng(seed)
    te_x, te_y = test
    model.eval()
    x, labels = batch(te_x, te_y, r, n, gap_range, (4, 5))
    with torch.no_grad():
        got = decode(model(x))
    model.train()
    return sum(g == lab for g, lab in zip(got, labels)) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000, help="batches of 64 lines")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--width", type=int, default=32, help="channels of the first conv block (x2, x4 after)")
    parser.add_argument("--hidden", type=int, default=96, help="the GRU's units each way")
    parser.add_argument("--train", default="../shared/data/mnist-train", help="the official training files")
    parser.add_argument("--test", default="../shared/data/mnist-test", help="the official test files")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    train, test = load_idx_folder(Path(args.train)).train, load_idx_folder(Path(args.test)).train
    tr_x, tr_y = train.images.numpy(), train.labels.numpy()
    held_out = (test.images.numpy(), test.labels.numpy())
    model = Reader(args.width, args.hidden)
    print(f"{sum(p.numel() for p in model.parameters()):,} parameters; {args.threads} threads", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=args.steps)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    started = time.perf_counter()
    for step in range(args.steps):
        x, labels = batch(tr_x, tr_y, rng, 64)
        targets = torch.tensor([k + 1 for lab in labels for k in lab])
        lengths = torch.tensor([len(lab) for lab in labels])
        logp = model(x)
        loss = ctc(logp, targets, torch.full((len(labels),), logp.shape[0], dtype=torch.long), lengths)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 500 == 0 or step == args.steps - 1:
            spaced, touching = evaluate(model, held_out, (0.08, 0.6)), evaluate(model, held_out, (-0.1, 0.03))
            print(
                f"step {step}: loss {loss.item():.3f}, {time.perf_counter() - started:.0f} s; 4-digit lines read "
                f"exactly: spaced {spaced:.3f}, touching {touching:.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
