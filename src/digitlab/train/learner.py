"""The `Learner`: the book's training loop, with everything else in callbacks (fastai course part 2's miniai).

Each epoch steps through the train DataLoader, then predicts over the valid one. Metrics, progress,
schedules, devices, guards and checkpoints are `Callback`s (callback.py: the events and Cancel*)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import nn

from .callback import (
    Callback,
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    all_reduced,
    callable_name,
    callback_name,
    forward_contexts,
    run_cbs,
    with_events,
)
from .callbacks import RecorderCB, default_callbacks
from .dataloader import DataLoaders
from .losses import LossFunc
from .optim import SGD

__all__ = ["Callback", "CancelBatchException", "CancelEpochException", "CancelFitException", "Learner"]


class Learner:
    """Train `model` on `dls` with `loss_func` and an optimizer made by `opt_func(params, lr)`.

    As the book writes it: `Learner(dls, nn.Linear(28*28, 1), opt_func=SGD, loss_func=mnist_loss,
    metrics=batch_accuracy)`, then `learn.fit(10, lr=1.0)`. `metrics`: (preds, targets) -> 0-dim tensor,
    averaged over the valid set. `default_cbs` (fastai's): RecorderCB (`learn.recorder`), the epoch
    table, MentorCB (the chapter's mistakes in words) and ThreadPolicyCB, unless `cbs` has their kind."""

    recorder: RecorderCB  # add_cbs names every callback; no recorder if default_cbs=False and `cbs` has none

    def __init__(
        self,
        dls: DataLoaders,
        model: nn.Module,
        loss_func: LossFunc,
        opt_func: Callable[..., torch.optim.Optimizer] = SGD,
        lr: float = 0.1,
        metrics: LossFunc | Sequence[LossFunc] = (),
        cbs: Iterable[Callback] = (),
        default_cbs: bool = True,
    ) -> None:
        self.dls, self.model, self.loss_func, self.opt_func, self.lr = dls, model, loss_func, opt_func, lr
        self.metrics = [metrics] if callable(metrics) else list(metrics)
        self.cbs: list[Callback] = []
        self.opt: Any = None
        self.step_batch = self.eager_step  # a callback may replace it for a fit (CudaGraphCB: a graph replay)
        cbs = list(cbs)
        self.add_cbs(cbs + (default_callbacks(cbs) if default_cbs else []))

    def add_cbs(self, cbs: Iterable[Callback]) -> None:
        """Add callbacks, each reachable by its name (`learn.recorder`), kept sorted by `order`."""
        for cb in cbs:
            cb.learn = self
            setattr(self, callback_name(cb), cb)
            self.cbs.append(cb)
        self.cbs.sort(key=lambda cb: cb.order)

    def remove_cbs(self, cbs: Iterable[Callback]) -> None:
        for cb in cbs:
            self.cbs.remove(cb)
            if getattr(self, name := callback_name(cb), None) is cb:
                delattr(self, name)

    def callback(self, event: str) -> None:
        run_cbs(self.cbs, event)

    def fit(self, n_epoch: int = 1, lr: float | None = None, cbs: Iterable[Callback] = ()) -> None:
        """Train n_epoch epochs, with `cbs` for this fit only; None, as fastai's (a cell shows the table alone)."""
        extra = list(cbs)
        self.add_cbs(extra)
        try:
            self.n_epoch, self.epoch, self.first_epoch = n_epoch, 0, 0  # ResumeCB's before_fit raises first_epoch
            self.lr = self.lr if lr is None else lr
            self.opt = self.opt_func(self.model.parameters(), lr=self.lr)
            with_events(self.callback, "fit", self._all_epochs, CancelFitException)
        finally:
            # runs even when an error (a diverged loss, Ctrl-C) skipped after_fit: close progress bars
            self.callback("cleanup_fit")
            self.remove_cbs(extra)

    def _all_epochs(self) -> None:
        for self.epoch in range(self.first_epoch, self.n_epoch):  # callbacks read the loop's state  # noqa: B020
            self.one_epoch(training=True)
            with torch.no_grad():
                self.one_epoch(training=False)

    def one_epoch(self, training: bool) -> None:
        self.training = training
        self.model.train(training)
        self.dl = self.dls.train if training else self.dls.valid
        with_events(self.callback, "epoch", self._all_batches, CancelEpochException)

    def _all_batches(self) -> None:
        for self.iter, self.batch in enumerate(self.dl):  # noqa: B020
            with_events(self.callback, "batch", self.one_batch, CancelBatchException)

    def one_batch(self) -> None:
        self.step_batch()

    def eager_step(self) -> None:
        """Predict and loss; in training also backward, step and zero_grad, each followed by its event."""
        with self.forward_context():
            self.preds = self.model(self.batch[0])
            self.callback("after_predict")
            self.loss = self.loss_func(self.preds, self.batch[1])
        self.callback("after_loss")
        if self.training:
            self.loss.backward()
            self.callback("after_backward")
            self.opt.step()
            self.callback("after_step")
            self.opt.zero_grad()

    def forward_context(self) -> AbstractContextManager[None]:
        return forward_contexts(self.cbs)  # around the forward pass, after_predict and the loss: autocast

    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        return all_reduced(self.cbs, tensor)  # its sum over every process that trains this model

    @property
    def device(self) -> torch.device:
        return next((p.device for p in self.model.parameters()), torch.device("cpu"))  # CPU: no parameters

    @property
    def n_iter(self) -> int:
        return len(self.dl)

    def __repr__(self) -> str:
        metrics = ", ".join(getattr(m, "__name__", type(m).__name__) for m in self.metrics)
        cbs = ", ".join(type(cb).__name__ for cb in self.cbs)
        return (
            f"Learner({type(self.model).__name__}, loss_func={callable_name(self.loss_func)}, "
            f"opt_func={callable_name(self.opt_func)}, lr={self.lr:g}, metrics=[{metrics}], cbs=[{cbs}], "
            f"batches: {len(self.dls.train)} train, {len(self.dls.valid)} valid)"
        )
