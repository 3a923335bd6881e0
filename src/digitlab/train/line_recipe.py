"""Training a line reader (`digitlab train --model line-reader`): the same Learner, callbacks and settings as
the digit models, on lines of digits made afresh each epoch from the training digits (`data.lines`), with a
CTC loss and AdamW. Validation lines are made once from the validation digits: no digit of a line the
reader is scored on was seen in training."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import partial
from typing import cast

import numpy as np
import torch

from ..core.defaults import LINE_READER
from ..core.notebook import in_kernel
from ..data.digits import Digits
from ..data.lines import SPACED, TOUCHING, LineBatches
from ..errors import DigitlabError
from ..line_reader import LineReader, ctc_loss, line_accuracy
from .callback import Callback
from .callbacks import DeviceCB, DivergenceGuardCB, OneCycleCB, ProgressCB, RecorderCB
from .config import TrainConfig
from .dataloader import DataLoader, DataLoaders
from .device import resolve_device
from .learner import Learner
from .recipe import resolved_setting, seed_everything
from .thread_policy import ThreadPolicyCB

LINES_PER_EPOCH = 16_000  # lines made per training epoch (12 epochs: 3,000 batches of 64)
VALID_LINES = 512  # lines of 3-6 validation digits scored after each epoch
SCORED_LINES = 1_000  # 4-digit lines of validation digits scored at the end, spaced and touching each


@dataclass
class LineTrainResult:
    learner: Learner
    config: TrainConfig  # resolved
    fit_seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)  # "spaced", "touching": lines read exactly
    threads: int = 1  # torch's CPU threads at the end (--threads auto follows the load)


def _as_arrays(digits: Digits) -> tuple[np.ndarray, np.ndarray]:
    if digits.classes != tuple(str(d) for d in range(10)):
        raise DigitlabError(
            f"a line reader learns all ten digits; these data have classes {', '.join(digits.classes)} "
            "(train it with --data mnist, or a folder of all ten)"
        )
    return digits.images.numpy(), digits.labels.numpy()


def line_learner(config: TrainConfig, train: Digits, valid: Digits, progress: bool = True) -> Learner:
    """A Learner for a line reader: config resolved (`config.resolved(len(train))`), on config.device."""
    if not config.is_resolved or config.model != LINE_READER:
        raise DigitlabError(f"line_learner wants a resolved {LINE_READER} config, got model {config.model!r}")
    seed_everything(config.seed)
    bs = resolved_setting(config, "bs", config.bs)
    train_x, train_y = _as_arrays(train)
    valid_x, valid_y = _as_arrays(valid)
    # the Learner only iterates its loaders and asks their length: batches made on the fly serve as loaders
    train_lines = LineBatches(train_x, train_y, max(1, LINES_PER_EPOCH // bs), bs, config.seed)
    valid_lines = LineBatches(valid_x, valid_y, max(1, VALID_LINES // bs), bs, config.seed + 1, fresh=False)
    dls = DataLoaders(cast(DataLoader, train_lines), cast(DataLoader, valid_lines))
    cbs: list[Callback] = [DeviceCB(resolve_device(config.device)), RecorderCB(), DivergenceGuardCB(), OneCycleCB()]
    if config.threads == "auto":
        cbs.append(ThreadPolicyCB())
    elif isinstance(config.threads, int):
        torch.set_num_threads(config.threads)
    if progress:
        cbs.append(ProgressCB(html=in_kernel()))
    model = LineReader()
    opt_func = partial(torch.optim.AdamW, weight_decay=resolved_setting(config, "wd", config.wd))
    lr = resolved_setting(config, "lr", config.lr)
    return Learner(dls, model, ctc_loss, opt_func, lr, [line_accuracy], cbs, default_cbs=False)


def score_lines(model: LineReader, valid: Digits, seed: int, n: int | None = None) -> dict[str, float]:
    """The fraction of n (default SCORED_LINES) 4-digit lines of `valid` read exactly, spaced and touching
    (bench_numbers' gaps)."""
    n = SCORED_LINES if n is None else n
    images, labels = _as_arrays(valid)
    model.eval()
    device = next(model.parameters()).device
    scores = {}
    for name, gaps in (("spaced", SPACED), ("touching", TOUCHING)):
        lines = LineBatches(images, labels, 1, n, seed + 2, gaps, (4, 5), fresh=False)
        x, y = next(iter(lines))
        with torch.no_grad():
            preds = torch.cat([model(part.to(device)) for part in torch.split(x, 256)])
        scores[name] = round(line_accuracy(preds, y).item(), 4)
    return scores


def fit_lines(config: TrainConfig, train: Digits, valid: Digits, progress: bool = True) -> LineTrainResult:
    """Train a line reader on lines of `train`, score it on lines of `valid`."""
    config = config.resolved(len(train))
    config = replace(config, device=resolve_device(config.device))
    learn = line_learner(config, train, valid, progress)
    started = time.perf_counter()
    learn.fit(resolved_setting(config, "epochs", config.epochs))
    seconds = time.perf_counter() - started
    assert isinstance(learn.model, LineReader)  # line_learner built it
    scores = score_lines(learn.model, valid, config.seed)
    return LineTrainResult(learn, config, seconds, learn.recorder.history, scores, torch.get_num_threads())
