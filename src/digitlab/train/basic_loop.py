"""The chapter's hand-written training loop, before the `Learner`: the seven steps as functions.

The book writes these against notebook globals (`dl`, `valid_dl`, `opt`, `weights`); here each
takes what it uses as an argument, so they work with any model, data and optimizer:

    calc_grad(xb, yb, model)               predict, loss, backward (steps 2-4)
    train_epoch(model, dl, opt)            calc_grad, step, zero_grad for every batch (5-6)
    train_epoch(model, dl, lr=1., params=(weights, bias))   the book's first form, no optimizer
    validate_epoch(model, valid_dl)        mean batch_accuracy over the validation batches
    train_model(model, epochs, dl, valid_dl, opt)           repeat, printing accuracy (step 7)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from ..errors import DigitlabError
from .losses import LossFunc, batch_accuracy, mnist_loss

Model = Callable[[torch.Tensor], torch.Tensor]
Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]  # a DataLoader, or any (xb, yb) pairs


def calc_grad(xb: torch.Tensor, yb: torch.Tensor, model: Model, loss_func: LossFunc = mnist_loss) -> torch.Tensor:
    """Predict, compute the loss, and add its gradients to the parameters' `.grad`; returns the loss."""
    loss = loss_func(model(xb), yb)
    loss.backward()
    return loss.detach()


def train_epoch(
    model: Model,
    dl: Batches,
    opt: Any = None,
    lr: float | None = None,
    params: Iterable[torch.Tensor] | None = None,
    loss_func: LossFunc = mnist_loss,
) -> None:
    """One pass over `dl`, updating after every batch: with `opt` (step, zero_grad), or the book's
    first form, `p.data -= p.grad * lr` for each of `params` by hand."""
    if opt is None and (lr is None or params is None):
        raise DigitlabError("train_epoch needs an optimizer (opt=SGD(params, lr)) or both lr= and params=")
    params = list(params) if params is not None else []
    for xb, yb in dl:
        calc_grad(xb, yb, model, loss_func)
        if opt is not None:
            opt.step()
            opt.zero_grad()
            continue
        assert lr is not None  # checked above: without opt, lr and params are given
        for p in params:
            if p.grad is None:
                raise DigitlabError("train_epoch: a parameter got no gradient (is it used by the model?)")
            p.data -= p.grad * lr
            p.grad.zero_()


def validate_epoch(model: Model, valid_dl: Batches, metric: LossFunc = batch_accuracy) -> float:
    """The mean of `metric` over the validation batches, rounded to 4 places as the book prints it.

    A mean of batch means, as the book computes it: a short last batch weighs as much as a full one.
    """
    with torch.no_grad():
        scores = [metric(model(xb), yb) for xb, yb in valid_dl]
    if not scores:
        raise DigitlabError("validate_epoch got no batches: the validation DataLoader is empty")
    return round(torch.stack(scores).mean().item(), 4)


def train_model(
    model: Model,
    epochs: int,
    dl: Batches,
    valid_dl: Batches,
    opt: Any,
    loss_func: LossFunc = mnist_loss,
    log: Callable[[str], None] | None = None,
) -> list[float]:
    """`epochs` of train_epoch, each followed by validate_epoch; prints the accuracies on one line
    as the book does (or passes each to `log`); returns them all. Past the book's 20 epochs the line
    shows every k-th and the last, about 20 numbers, and says so (140 numbers do not read)."""
    every = math.ceil(epochs / BOOK_SHOWN) if epochs > BOOK_SHOWN else 1
    accuracies: list[float] = []
    for epoch in range(1, epochs + 1):
        train_epoch(model, dl, opt, loss_func=loss_func)
        accuracies.append(validate_epoch(model, valid_dl))
        if log is not None:
            log(str(accuracies[-1]))
        elif epoch % every == 0 or epoch == epochs:
            print(accuracies[-1], end=" ", flush=True)
    if log is None:
        print(f"(one in {every} of {epochs} epochs, and the last)" if every > 1 else "")
    return accuracies


BOOK_SHOWN = 20  # accuracies printed by train_model at most (and the last): the book's 20 epochs
