"""Exercises on the training loop: train_epoch, validate_epoch and BasicOptim."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from ..models import linear1 as book_linear1
from ..train.basic_loop import calc_grad
from ..train.basic_loop import train_epoch as book_train_epoch
from ..train.losses import batch_accuracy, mnist_loss
from ..train.optim import BasicOptim as BookOptim
from .calling import book_globals, call_by_name, own_helpers
from .feedback import Wrong, close, describe, first_difference
from .probes import Probe, differs, generator, numbers, tensor
from .registry import CheckContext, register

LR = 0.5  # not the book's 1.0: a train_epoch that ignores its lr shows it


def _problem(seed: int = 9) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor, torch.Tensor]:
    """Three batches of 32 flattened 'images' with 0/1 targets, and starting weights (784, 1) and bias (1,)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(96, 28 * 28, generator=g)
    y = (x[:, :392].mean(1) > x[:, 392:].mean(1)).float().unsqueeze(1)  # (96, 1): left half brighter?
    dl = [(x[i : i + 32], y[i : i + 32]) for i in range(0, 96, 32)]
    return dl, torch.randn(28 * 28, 1, generator=g) * 0.1, torch.zeros(1)


def _epoch(
    dl: list[tuple[torch.Tensor, torch.Tensor]], w0: torch.Tensor, b0: torch.Tensor, zero: bool, sign: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One epoch of the book's loop by hand, right (zero=True, sign=-1) or with a classic mistake."""
    w, b = w0.clone().requires_grad_(), b0.clone().requires_grad_()
    for xb, yb in dl:
        mnist_loss(book_linear1(xb, w, b), yb).backward()
        for p in (w, b):
            assert p.grad is not None  # both are used by linear1
            p.data += sign * p.grad * LR
            if zero:
                p.grad.zero_()
    return w.detach(), b.detach()


DEFAULTS = {"calc_grad": calc_grad, "mnist_loss": mnist_loss, "linear1": book_linear1}


def _run_train_epoch(
    train_epoch: Any, dl: list[tuple[torch.Tensor, torch.Tensor]], w0: torch.Tensor, b0: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The weights after the learner's train_epoch, called as the book's cells call it, from w0, b0."""
    w, b = w0.clone().requires_grad_(), b0.clone().requires_grad_()
    params, opt = (w, b), BookOptim((w, b), LR)
    available = {"model": lambda xb: book_linear1(xb, w, b), "dl": dl, "lr": LR, "params": params, "opt": opt}
    names = {**available, "weights": w, "bias": b, "train_dl": dl}
    with book_globals(train_epoch, names, DEFAULTS):
        call_by_name(train_epoch, "train_epoch", available)
    return w.detach(), b.detach()


def check_train_epoch(train_epoch: Any, ctx: CheckContext) -> str:
    dl, w0, b0 = _problem()
    got_w, got_b = _run_train_epoch(train_epoch, dl, w0, b0)
    want_w, want_b = book_weights(dl, w0, b0)
    if close(got_w, want_w) and close(got_b, want_b):
        return f"after one epoch of 3 batches at lr {LR} the weights are SGD's, step for step"
    if close(got_w, w0) and close(got_b, b0):
        raise Wrong("the parameters did not change: train_epoch should update them after every batch")
    mistakes = {
        "the weights moved uphill: subtract the gradient, p.data -= p.grad * lr": _epoch(dl, w0, b0, True, +1.0),
        "the gradients were never reset, so each step also added all the earlier ones: zero them after each step "
        "(p.grad.zero_() or opt.zero_grad())": _epoch(dl, w0, b0, False, -1.0),
    }
    for message, (mw, mb) in mistakes.items():
        if close(got_w, mw) and close(got_b, mb):
            raise Wrong(message)
    hint = own_helpers(train_epoch, DEFAULTS)
    raise Wrong(f"after one epoch your weights differ from SGD's {first_difference(got_w, want_w)}{hint}")


def book_weights(
    dl: list[tuple[torch.Tensor, torch.Tensor]], w0: torch.Tensor, b0: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The weights after digitlab's train_epoch (the book's first form) from w0, b0."""
    w, b = w0.clone().requires_grad_(), b0.clone().requires_grad_()
    book_train_epoch(lambda xb: book_linear1(xb, w, b), dl, lr=LR, params=(w, b))
    return w.detach(), b.detach()


def _call_validate_epoch(validate_epoch: Any, valid_dl: list[tuple[torch.Tensor, torch.Tensor]]) -> Any:
    """validate_epoch(model) reading valid_dl, or with it by name; the model's score is the first pixel."""
    available = {"model": lambda xb: xb[:, :1], "valid_dl": valid_dl, "dl": valid_dl}
    with book_globals(validate_epoch, {"valid_dl": valid_dl}, {"batch_accuracy": batch_accuracy}):
        return call_by_name(validate_epoch, "validate_epoch", available)


def check_validate_epoch(validate_epoch: Any, ctx: CheckContext) -> str:
    logits = torch.tensor([2.0, -2.0, 2.0, -2.0, 2.0, 2.0, -2.0, -2.0, 2.0, -2.0])
    targets = torch.tensor([1, 0, 1, 0, 1, 0, 1, 0, 0, 1]).unsqueeze(1)  # batch accuracies 1.0, 0.5, 0.0
    x = torch.zeros(10, 28 * 28)
    x[:, 0] = logits
    valid_dl = [(x[0:4], targets[0:4]), (x[4:8], targets[4:8]), (x[8:10], targets[8:10])]
    got = _call_validate_epoch(validate_epoch, valid_dl)
    if isinstance(got, (list, tuple)):
        raise Wrong(f"validate_epoch returned {describe(got)}; return the mean of the batch accuracies")
    value = (
        float(got) if isinstance(got, (int, float)) or (isinstance(got, torch.Tensor) and got.numel() == 1) else None
    )
    if value is None:
        raise Wrong(f"validate_epoch returned {describe(got)}; it should return one number")
    if abs(value - 0.5) < 1e-3:
        return "the mean of the batch accuracies (1.0, 0.5 and 0.0 here: 0.5), as the book computes it"
    if abs(value - 0.6) < 1e-3:
        return "the accuracy over every image (0.6 here); the book takes the mean of the batch means (0.5): both fine"
    if abs(value) < 1e-3 or abs(value - 1.0) < 1e-3:
        raise Wrong(
            f"validate_epoch returned {value:g}, the accuracy of one batch only: is the `return` inside the loop? "
            "Collect every batch's accuracy, then return their mean"
        )
    hint = own_helpers(validate_epoch, {"batch_accuracy": batch_accuracy})
    raise Wrong(f"validate_epoch returned {value:g}; the batch accuracies are 1.0, 0.5 and 0.0, their mean 0.5{hint}")


def check_basic_optim(basic_optim: Any, ctx: CheckContext) -> str:
    torch.manual_seed(0)
    model, lr = nn.Linear(4, 1), 0.1
    params = list(model.parameters())
    opt = basic_optim(model.parameters(), lr)  # a generator, as the book passes it
    if any(inspect.isgenerator(v) for v in getattr(opt, "__dict__", {}).values()):
        raise Wrong(
            "BasicOptim kept `params` as given, and model.parameters() is a generator that can be read only "
            "once (the second step would change nothing): store list(params)"
        )
    for step in (1, 2):
        before = [p.detach().clone() for p in params]
        for p in params:
            p.grad = torch.full_like(p, float(step))
        opt.step()
        after = [p.detach() for p in params]
        if all(close(a, b) for a, b in zip(after, before)):
            if step == 2:
                raise Wrong(
                    "the second step changed nothing: you kept `params` as given, and model.parameters() is a "
                    "generator that can be read only once; store list(params)"
                )
            raise Wrong("step() did not change the parameters: p.data -= p.grad.data * self.lr for each")
        if all(close(a, b + lr * step) for a, b in zip(after, before)):
            raise Wrong("step() moved the parameters uphill: subtract the gradient times the learning rate")
        if not all(close(a, b - lr * step) for a, b in zip(after, before)):
            raise Wrong(f"step() moved the parameters by the wrong amount: each should move by -lr * grad, lr = {lr}")
        opt.zero_grad()
        if any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in params):
            raise Wrong("after zero_grad() the gradients are still there: set p.grad = None (or zero them)")
    return "step() moves every parameter by -lr * grad, twice, from model.parameters(); zero_grad() clears them"


def observe_train_epoch(train_epoch: Any, seed: int) -> Any:
    return [numbers(t) for t in _run_train_epoch(train_epoch, *_problem(seed))]


def judge_train_epoch(observation: Any, seed: int) -> str | None:
    dl, w0, b0 = _problem(seed)
    want_w, want_b = book_weights(dl, w0, b0)
    return differs(observation[0], want_w) or differs(observation[1], want_b)


def _valid_dl(seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = generator(seed)
    x = torch.randn(23, 28 * 28, generator=g)
    y = torch.randint(0, 2, (23, 1), generator=g)
    return [(x[i : i + 8], y[i : i + 8]) for i in range(0, 23, 8)]


def observe_validate_epoch(validate_epoch: Any, seed: int) -> Any:
    return numbers(_call_validate_epoch(validate_epoch, _valid_dl(seed)))


def judge_validate_epoch(observation: Any, seed: int) -> str | None:
    dl = _valid_dl(seed)
    means = torch.stack([batch_accuracy(xb[:, :1], yb) for xb, yb in dl]).mean()
    overall = torch.cat([((xb[:, :1] > 0) == yb).float() for xb, yb in dl]).mean()
    got = float(tensor(observation).reshape(()))
    if differs(got, means, atol=1e-3) and differs(got, overall, atol=1e-3):  # both the book's ways are fine
        return f"gave {got:.4f}; the mean of the batch accuracies is {float(means):.4f}"
    return None


def _optimizer_problem(seed: int) -> tuple[nn.Linear, float, list[torch.Tensor]]:
    torch.manual_seed(seed)
    model, g = nn.Linear(4, 1), generator(seed)
    grads = [torch.randn(2, *p.shape, generator=g) for p in model.parameters()]  # two steps' gradients
    return model, float(torch.rand((), generator=g)) * 0.5 + 0.05, grads


def observe_BasicOptim(basic_optim: Any, seed: int) -> Any:
    model, lr, grads = _optimizer_problem(seed)
    params = list(model.parameters())
    opt = basic_optim(model.parameters(), lr)
    for step in range(2):
        for p, g in zip(params, grads):
            p.grad = g[step].clone()
        opt.step()
        opt.zero_grad()
    left = [float(p.grad.abs().sum()) if p.grad is not None else 0.0 for p in params]
    return [[numbers(p) for p in params], left]


def judge_BasicOptim(observation: Any, seed: int) -> str | None:
    model, lr, grads = _optimizer_problem(seed)
    want = [p.detach() - lr * (g[0] + g[1]) for p, g in zip(model.parameters(), grads)]
    got, left = observation
    for g, w in zip(got, want, strict=True):
        why = differs(g, w)
        if why:
            return f"moved the parameters wrongly over two steps: {why}"
    return None if all(float(v) == 0 for v in left) else "left gradients behind after zero_grad()"


register("train_epoch", check_train_epoch, probe=Probe(observe_train_epoch, judge_train_epoch))
register("validate_epoch", check_validate_epoch, probe=Probe(observe_validate_epoch, judge_validate_epoch))
register("BasicOptim", check_basic_optim, probe=Probe(observe_BasicOptim, judge_BasicOptim))
