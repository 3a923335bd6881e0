"""The `Learner`: the book's training loop, with everything else in callbacks (fastai course part 2's miniai).

The loop does the seven steps' middle: predict, loss, backward, step, zero_grad, over the train
and then the valid DataLoader each epoch. Metrics, progress, schedules, devices, divergence checks
and checkpoints are `Callback`s (callback.py: the events, and the three interfaces a callback may
offer besides them: `forward_context`, `all_reduce`, `train_step`) run in `order`; a Cancel*
exception skips the rest of a batch, an epoch or the fit. The default callbacks (callbacks.py)
include `MentorCB`, which names the chapter's common mistakes in words.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from typing import Any

import torch
from torch import nn

from .callback import (
    Callback,
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    callable_name,
    callback_name,
)
from .callbacks import RecorderCB, default_callbacks
from .dataloader import DataLoaders
from .losses import LossFunc
from .optim import SGD

__all__ = ["Callback", "CancelBatchException", "CancelEpochException", "CancelFitException", "Learner"]


class Learner:
    """Train `model` on `dls` with `loss_func` and an optimizer made by `opt_func(params, lr)`.

    As the book writes it: `Learner(dls, nn.Linear(28*28, 1), opt_func=SGD, loss_func=mnist_loss,
    metrics=batch_accuracy)`, then `learn.fit(10, lr=1.0)` and `learn.recorder.values`.
    `opt_func` is digitlab's `SGD` by default; any `torch.optim` class works too.
    `metrics`: one function (preds, targets) -> 0-dim tensor, or a list of them, averaged over
    the valid set. `default_cbs` (as in fastai): a `RecorderCB` (`learn.recorder`) and the
    epoch table (`ProgressCB.auto()`: HTML in Jupyter, text on a terminal, nothing on a pipe),
    and digitlab's `MentorCB` (the chapter's mistakes in words) and `ThreadPolicyCB` (torch's
    threads from the free cores), each unless `cbs` already holds one of its kind;
    `default_cbs=False` adds none.
    """

    # Callbacks are reached by name (add_cbs sets the attribute): the recorder is there unless
    # default_cbs=False and `cbs` has no RecorderCB (then reading it raises AttributeError).
    recorder: RecorderCB

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
        cbs = list(cbs)
        self.add_cbs(cbs + (default_callbacks(cbs) if default_cbs else []))

    def add_cbs(self, cbs: Iterable[Callback]) -> None:
        """Add callbacks, each reachable by its name (`learn.recorder`), kept sorted by `order`."""
        for cb in cbs:
            cb.learn = self
            name = callback_name(cb)
            setattr(self, name, cb)  # e.g. learn.recorder
            self.cbs.append(cb)
        self.cbs.sort(key=lambda cb: cb.order)

    def remove_cbs(self, cbs: Iterable[Callback]) -> None:
        """Remove callbacks and their names."""
        for cb in cbs:
            self.cbs.remove(cb)
            name = callback_name(cb)
            if getattr(self, name, None) is cb:
                delattr(self, name)

    def callback(self, event: str) -> None:
        for cb in self.cbs:
            method = getattr(cb, event, None)
            if method is not None:
                method()

    def _with_events(self, name: str, body: Callable[[], None], cancel: type[Exception]) -> None:
        """before_{name}, body, after_{name}; a `cancel` raised in before_ or body skips to after_.

        after_{name} runs after a cancel too (as in fastai): a cancelled fit still reaches
        after_fit, and a cancelled epoch is still recorded.
        """
        try:
            self.callback(f"before_{name}")
            body()
        except cancel:
            self.callback(f"after_cancel_{name}")
        self.callback(f"after_{name}")

    def fit(self, n_epoch: int = 1, lr: float | None = None, cbs: Iterable[Callback] = ()) -> None:
        """Train for n_epoch epochs; `cbs` are added for this fit only.

        Returns None, as fastai's: a notebook cell that ends in `learn.fit(...)` shows the epoch
        table and nothing under it.
        """
        extra = list(cbs)
        self.add_cbs(extra)
        try:
            self.n_epoch, self.epoch = n_epoch, 0
            self.first_epoch = 0  # a callback's before_fit may raise it: a resumed fit (ResumeCB)
            self.lr = self.lr if lr is None else lr
            self.opt = self.opt_func(self.model.parameters(), lr=self.lr)
            self._with_events("fit", self._all_epochs, CancelFitException)
        finally:
            # runs even when an error (a diverged loss, Ctrl-C) skipped after_fit: close progress bars
            self.callback("cleanup_fit")
            self.remove_cbs(extra)

    def _all_epochs(self) -> None:
        # The loops set the learner's state (epoch, iter, batch), which callbacks read: miniai's idiom.
        for self.epoch in range(self.first_epoch, self.n_epoch):  # noqa: B020
            self.one_epoch(training=True)
            with torch.no_grad():
                self.one_epoch(training=False)

    def one_epoch(self, training: bool) -> None:
        self.training = training
        self.model.train(training)
        self.dl = self.dls.train if training else self.dls.valid
        self._with_events("epoch", self._all_batches, CancelEpochException)

    def _all_batches(self) -> None:
        for self.iter, self.batch in enumerate(self.dl):  # noqa: B020
            self._with_events("batch", self.one_batch, CancelBatchException)

    def one_batch(self) -> None:
        if self.training and any(step() for step in self._train_steps):
            # a callback ran this batch's forward, loss, backward and step (CudaGraphCB: one graph replay)
            self.callback("after_loss")
            self.callback("after_step")
            return
        xb, yb = self.batch[0], self.batch[1]
        with self.forward_context():
            self.preds = self.model(xb)
            self.callback("after_predict")
            self.loss = self.loss_func(self.preds, yb)
        self.callback("after_loss")
        if self.training:
            self.loss.backward()
            self.callback("after_backward")
            self.opt.step()
            self.callback("after_step")
            self.opt.zero_grad()

    @property
    def _train_steps(self) -> list[Callable[[], bool]]:
        return [cb.train_step for cb in self.cbs if hasattr(cb, "train_step")]

    def forward_context(self) -> AbstractContextManager[None]:
        """Every callback's `forward_context()`, entered in `order` (and left in reverse).

        It covers the forward pass, after_predict and the loss; after_loss, backward and the
        step run outside it. A cancelled batch or an error leaves every context it entered.
        """
        enters = [cb.forward_context for cb in self.cbs if hasattr(cb, "forward_context")]
        return _entered(enters) if enters else nullcontext()  # most fits: no context, no cost

    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum of `tensor` over every process that trains this model: `tensor` itself in one process.

        Each callback that defines `all_reduce(tensor)` (DistributedCB: across torchrun's ranks)
        is applied in turn. A callback that turns its sums into means calls this once per epoch
        with all its sums in one tensor (RecorderCB: loss, count and metric sums).
        """
        for cb in self.cbs:
            reduce = getattr(cb, "all_reduce", None)
            if reduce is not None:
                tensor = reduce(tensor)
        return tensor

    @property
    def device(self) -> torch.device:
        """Where the model's parameters are (the CPU for a model without any)."""
        return next((p.device for p in self.model.parameters()), torch.device("cpu"))

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


@contextmanager
def _entered(enters: list[Callable[[], AbstractContextManager[Any]]]) -> Iterator[None]:
    with ExitStack() as stack:
        for enter in enters:
            stack.enter_context(enter())
        yield
