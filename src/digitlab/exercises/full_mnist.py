"""The chapter's further research, as an exercise: a model for all ten digits, trained in a time budget.

The learner writes `train_mnist(dls)`; the checker hands it DataLoaders over 7,000 training and 1,000
validation digits and scores the returned model on 2,000 held-out digits it never saw. Only unlabelled
held-out images reach the learner's process: the labels stay with the checker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import Settings
from ..core.progress import Log, quiet_log
from ..data.loading import load_dataset
from ..errors import DigitlabError
from ..train.dataloader import DataLoader, DataLoaders
from .catalogue import BUDGET, N_HELD_OUT, N_TRAIN, N_VALID, TARGET
from .feedback import CheckerError, Wrong, describe
from .registry import CheckContext, register


@dataclass(frozen=True)
class MnistExercise:
    """(N, 28, 28) uint8 images and (N,) int64 labels; the held-out labels are the checker's alone."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    valid_x: torch.Tensor
    valid_y: torch.Tensor
    held_out_x: torch.Tensor
    held_out_y: torch.Tensor

    @classmethod
    def load(cls, settings: Settings | None = None, log: Log = quiet_log) -> MnistExercise:
        """From the `mnist` dataset: its train split (shuffled with a fixed seed) and its own valid/test split."""
        data = load_dataset("mnist", settings, log)
        if data.valid is None:
            raise CheckerError("the mnist dataset has no held-out split to score on")
        g = torch.Generator().manual_seed(0)
        train = data.train.subset(torch.randperm(len(data.train), generator=g)[: N_TRAIN + N_VALID])
        held = data.valid.subset(torch.randperm(len(data.valid), generator=g)[:N_HELD_OUT])
        return cls(
            train.images[:N_TRAIN], train.labels[:N_TRAIN], train.images[N_TRAIN:], train.labels[N_TRAIN:],
            held.images, held.labels,
        )  # fmt: skip

    def save_for_learner(self, path: Path) -> Path:
        """An .npz for the learner's process: everything but the held-out labels."""
        arrays = {k: getattr(self, k).numpy() for k in ("train_x", "train_y", "valid_x", "valid_y", "held_out_x")}
        with path.open("wb") as f:
            np.savez(f, **arrays)
        return path


def flat(images: torch.Tensor) -> torch.Tensor:
    """(N, 28, 28) uint8 -> (N, 784) float in [0, 1]."""
    return images.float().view(-1, 28 * 28) / 255


def dataloaders(train_x: torch.Tensor, train_y: torch.Tensor, valid_x: torch.Tensor, valid_y: torch.Tensor) -> Any:
    """The learner's DataLoaders: xb (bs, 784) float in [0, 1], yb (bs,) int64 digits."""
    return DataLoaders(
        DataLoader((flat(train_x), train_y), batch_size=64, shuffle=True, seed=0),
        DataLoader((flat(valid_x), valid_y), batch_size=512),
    )


def judge(predictions: list[int], labels: torch.Tensor, seconds: float) -> str:
    """Score the predictions against the held-out labels: the pass line, or Wrong."""
    if len(predictions) != len(labels):
        raise Wrong(f"train_mnist's model gave {len(predictions):,} predictions for {len(labels):,} held-out digits")
    accuracy = float((torch.tensor(predictions) == labels).float().mean())
    if accuracy < TARGET:
        raise Wrong(
            f"your model reached {accuracy:.3f} on {len(labels):,} held-out digits; the target is {TARGET}: "
            "train longer, raise the learning rate, or add a hidden layer (use cross_entropy with 10 outputs)"
        )
    if seconds > BUDGET:
        raise Wrong(
            f"your model reached {accuracy:.3f}, but training took {seconds:.0f} s; the budget is {BUDGET:.0f} s"
        )
    return f"{accuracy:.3f} on {len(labels):,} held-out digits (target {TARGET}), trained in {seconds:.1f} s"


def check_train_mnist(train_mnist: Any, ctx: CheckContext) -> str:
    if ctx.data is None:
        try:
            exercise = MnistExercise.load()
        except DigitlabError as e:
            raise CheckerError(f"the ten-digit exercise needs the mnist dataset: {e}") from None
        arrays = {k: getattr(exercise, k) for k in ("train_x", "train_y", "valid_x", "valid_y", "held_out_x")}
        ctx.judge = lambda predictions, seconds: judge(predictions, exercise.held_out_y, seconds)
    else:
        with np.load(ctx.data, allow_pickle=False) as f:
            arrays = {k: torch.from_numpy(f[k]) for k in f.files}
    dls = dataloaders(arrays["train_x"], arrays["train_y"], arrays["valid_x"], arrays["valid_y"])
    start = time.perf_counter()
    result = train_mnist(dls)
    seconds = time.perf_counter() - start
    model = getattr(result, "model", result)  # a Learner, or the model itself
    if not callable(model):
        raise Wrong(f"train_mnist returned {describe(result)}; return the trained model (or the Learner)")
    if isinstance(model, torch.nn.Module):
        model.eval()
    held_out = flat(arrays["held_out_x"])
    with torch.no_grad():
        scores = model(held_out)
    if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != (len(held_out), 10):
        raise Wrong(
            f"for {len(held_out):,} images your model gives {describe(scores)}; ten digits need ten scores per "
            f"image, ({len(held_out)}, 10), trained with cross_entropy"
        )
    predictions = scores.argmax(1).tolist()
    ctx.payload.update(predictions=predictions)  # the checker times the training on its own clock
    if ctx.judge is None:
        return "predictions made; the checker scores them"
    return ctx.judge(predictions, seconds)


register("train_mnist", check_train_mnist)
