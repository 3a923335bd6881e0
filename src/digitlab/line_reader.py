"""A reader of whole lines of digits: convolutions, a bidirectional GRU and a CTC loss (Graves et al. 2006).

Cutting a line into digits first fails where digits touch ("18" drawn in one stroke reads as one
digit); this network never cuts. It looks at a line (N, 1, 32, W), W a multiple of 4, and says for each
of W / 4 columns of 4 px how likely each digit or "blank" is there; `decode` keeps each column's likeliest
symbol, merges repeats and drops blanks ("--11-8-" -> "18"). The CTC loss sums over every such path of
columns that spells the label, so no one says where each digit lies. Trained on lines made from single
digits (`digitlab.data.lines`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .data.lines import COLUMN, LINE_HEIGHT, PAD
from .errors import DigitlabError

BLANK = 0  # CTC's blank symbol; digit d is symbol d + 1
LINE_READER_WIDTH, LINE_READER_HIDDEN = 16, 64  # 136k parameters: bench/line_reader_prototype.py's figures


def _block(c_in: int, c_out: int, pool: tuple[int, int]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(pool)
    )


class LineReader(nn.Module):
    """(N, 1, 32, W) float lines in [0, 1] (ink 1 on 0) -> (N, W / 4, 11) log-probabilities of blank, 0..9.

    convs: 4 blocks of conv 3x3 -> batchnorm -> ReLU -> max-pool, `width`, 2x, 4x, 4x channels; pooling
    2x2, 2x2, 2x1, 2x1: (N, 4 width, 2, W / 4); the 2 rows of each column, flattened, are one step of a
    bidirectional GRU of `hidden` units each way; a linear layer reads each step."""

    def __init__(self, width: int = LINE_READER_WIDTH, hidden: int = LINE_READER_HIDDEN) -> None:
        super().__init__()
        self.init_kwargs = {"width": width, "hidden": hidden}
        c = width
        self.convs = nn.Sequential(
            _block(1, c, (2, 2)), _block(c, 2 * c, (2, 2)), _block(2 * c, 4 * c, (2, 1)), _block(4 * c, 4 * c, (2, 1))
        )
        self.rnn = nn.GRU(4 * c * 2, hidden, bidirectional=True, batch_first=True)
        self.out = nn.Linear(2 * hidden, 11)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != LINE_HEIGHT or x.shape[3] % COLUMN:
            raise DigitlabError(
                f"a line reader wants lines shaped (N, 1, {LINE_HEIGHT}, W), W a multiple of {COLUMN}, "
                f"got {tuple(x.shape)}"
            )
        f = self.convs(x)  # (N, 4c, 2, W / 4)
        steps, _ = self.rnn(f.flatten(1, 2).transpose(1, 2))  # (N, W / 4, 2 hidden)
        out: torch.Tensor = self.out(steps).log_softmax(-1)  # (N, W / 4, 11)
        return out

    def __repr__(self) -> str:
        n_params = sum(p.numel() for p in self.parameters())
        return (
            f"LineReader(width={self.init_kwargs['width']}, hidden={self.init_kwargs['hidden']}: 4 conv blocks, "
            f"a bidirectional GRU, 11 symbols per 4 px column; {n_params:,} parameters)"
        )


def ctc_loss(preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """preds (N, T, 11) log-probabilities, targets (N, L) digits padded with PAD -> the mean CTC loss."""
    lengths = (targets != PAD).sum(1)
    symbols = targets[targets != PAD] + 1  # (sum of lengths,) digit d is symbol d + 1
    steps = torch.full((len(preds),), preds.shape[1], dtype=torch.long)
    return F.ctc_loss(preds.transpose(0, 1), symbols, steps, lengths, blank=BLANK, zero_infinity=True)


@dataclass(frozen=True)
class LineReading:
    """What a line reader reads in one line."""

    digits: str  # "1840"; "" when it sees none
    probabilities: tuple[float, ...]  # each digit's, the highest over the columns that emit it
    columns: tuple[tuple[int, int], ...]  # each digit's first and last column (x / COLUMN), inclusive
    # each digit's probabilities of 0..9 at the column where its own is highest, the blank left out and the
    # ten scaled to sum to 1 (what `predict.checked` weighs against the digit model's); () when not known
    distributions: tuple[tuple[float, ...], ...] = ()

    def distribution(self, i: int) -> tuple[float, ...]:
        """Digit i's probabilities of 0..9: `distributions[i]`, or, when not known, its probability on its
        digit and the rest shared evenly by the other nine."""
        if self.distributions:
            return self.distributions[i]
        p = self.probabilities[i]
        return tuple(p if str(d) == self.digits[i] else (1 - p) / 9 for d in range(10))

    @property
    def probability(self) -> float:
        """The whole reading's: the product of its digits'."""
        p = 1.0
        for q in self.probabilities:
            p *= q
        return p


def decode(preds: torch.Tensor) -> list[LineReading]:
    """(N, T, 11) log-probabilities -> each line's greedy reading: the likeliest symbol of each column,
    repeats merged, blanks dropped."""
    probs = preds.detach().float().exp().cpu()  # (N, T, 11)
    best, symbols = probs.max(-1)  # (N, T) each
    readings = []
    for row, row_p, row_s in zip(probs, best.tolist(), symbols.tolist()):
        digits: list[str] = []
        ps: list[float] = []
        cols: list[list[int]] = []
        peaks: list[int] = []  # the column where each digit's probability is highest
        prev = BLANK
        for t, (p, s) in enumerate(zip(row_p, row_s)):
            if s != BLANK and s == prev:
                if p > ps[-1]:
                    ps[-1], peaks[-1] = p, t
                cols[-1][1] = t
            elif s != BLANK:
                digits.append(str(s - 1))
                ps.append(p)
                cols.append([t, t])
                peaks.append(t)
            prev = s
        ten = row[peaks, 1:]  # (digits, 10): 0..9 at each peak, the blank left out
        ten = ten / ten.sum(1, keepdim=True).clamp_min(1e-12)
        dists = tuple(tuple(d) for d in ten.tolist())
        readings.append(LineReading("".join(digits), tuple(ps), tuple((a, b) for a, b in cols), dists))
    return readings


def line_accuracy(preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The fraction of lines read exactly: every digit, in order, none missing or extra (a Learner metric)."""
    wanted = ["".join(str(d) for d in row if d != PAD) for row in targets.tolist()]
    got = [reading.digits for reading in decode(preds)]
    return torch.tensor(sum(g == w for g, w in zip(got, wanted)) / max(len(wanted), 1))
