"""Exercises on the pieces of SGD: init_params, linear1, mnist_loss, batch_accuracy, mini-batches."""

from __future__ import annotations

from typing import Any

import torch

from ..train.losses import batch_accuracy as book_accuracy
from ..train.losses import mnist_loss as book_loss
from .calling import book_globals, call_by_name, required_arity
from .feedback import Wrong, as_tensor, close, describe, expect_shape, first_difference
from .probes import Probe, differs, generator, numbers, tensor
from .registry import CheckContext, register


def check_init_params(init_params: Any, ctx: CheckContext) -> str:
    for size, std in (((28 * 28, 1), None), (1, None), ((28 * 28, 30), 0.5), ((20_000,), 2.0)):
        t = as_tensor(init_params(size) if std is None else init_params(size, std), "init_params")
        shape = (size,) if isinstance(size, int) else size
        expect_shape(t, shape, f"init_params({size})")
        if not t.requires_grad:
            raise Wrong("the tensor does not track gradients: end with .requires_grad_() so SGD can learn it")
        if not t.is_leaf:
            raise Wrong(
                "the tensor is computed from another one (requires_grad_() came before `* std`), so it is not a "
                "leaf and an optimizer cannot update it: multiply first, (torch.randn(size)*std).requires_grad_()"
            )
        values = t.detach()
        if t.numel() >= 10_000:
            want_std = 1.0 if std is None else std
            if float(values.min()) >= 0:
                raise Wrong("every value is positive: torch.rand draws from [0, 1); the book's torch.randn is normal")
            if abs(float(values.std()) - want_std) > 0.1 * want_std:
                raise Wrong(
                    f"init_params({size}, std={std}) has a spread of {float(values.std()):.3f}; multiply by std"
                )
            if abs(float(values.mean())) > 0.1 * want_std:
                raise Wrong(f"init_params' values have mean {float(values.mean()):.3f}; they should center on 0")
    return (
        "random normal values of the asked shape and spread, tracking gradients, leaf tensors an optimizer can update"
    )


def _call_linear1(linear1: Any, xb: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """linear1 called as the book's cell calls it: linear1(xb) reading weights and bias, or with them by name."""
    values = {"xb": xb, "weights": weights, "bias": bias}
    with book_globals(linear1, {"weights": weights, "bias": bias}):
        got = linear1(xb) if required_arity(linear1) == 1 else call_by_name(linear1, "linear1", values)
    return as_tensor(got, "linear1")


def check_linear1(linear1: Any, ctx: CheckContext) -> str:
    g = torch.Generator().manual_seed(5)
    for n in (16, 3):
        xb = torch.rand(n, 28 * 28, generator=g)
        weights, bias = torch.randn(28 * 28, 1, generator=g), torch.randn(1, generator=g)
        got = _call_linear1(linear1, xb, weights, bias)
        want = xb @ weights + bias  # (n, 1)
        if tuple(got.shape) != (n, 1):
            raise Wrong(f"linear1 returned shape {tuple(got.shape)} for {n} images; xb @ weights gives ({n}, 1)")
        if close(got, xb @ weights):
            raise Wrong("linear1 left out the bias: xb @ weights + bias")
        if not close(got, want, atol=1e-3):
            raise Wrong(f"linear1 differs from xb @ weights + bias {first_difference(got, want)}")
    return "xb @ weights + bias: (N, 784) @ (784, 1) + (1,) gives one score per image, (N, 1)"


def check_mnist_loss(mnist_loss: Any, ctx: CheckContext) -> str:
    g = torch.Generator().manual_seed(6)
    cases = [
        (torch.tensor([0.9, 0.4, -0.2]), torch.tensor([1, 0, 1])),  # the book's example
        (torch.randn(64, 1, generator=g) * 4, torch.randint(0, 2, (64, 1), generator=g)),
        (torch.tensor([20.0, -20.0, 20.0]), torch.tensor([0, 1, 0])),  # confidently wrong: loss near 1
    ]
    for predictions, targets in cases:
        p = predictions.clone().requires_grad_()
        got = mnist_loss(p, targets.clone())
        if isinstance(got, (float, int)):
            raise Wrong("mnist_loss returned a Python number: SGD needs a tensor to call .backward() on")
        got = as_tensor(got, "mnist_loss")
        if got.ndim != 0:
            raise Wrong(f"mnist_loss returned {describe(got)}; a loss is one number: take the .mean()")
        want = book_loss(predictions, targets)
        if close(got, want):
            if got.grad_fn is None:
                raise Wrong("mnist_loss is cut off from the predictions (.item(), .detach()?): no gradient can flow")
            continue
        sig = predictions.sigmoid()
        if close(got, torch.where(targets == 1, 1 - predictions, predictions).mean()):
            raise Wrong(
                "mnist_loss uses the raw predictions: for a prediction like 20 the loss goes below 0 or above 1; "
                "squash them with .sigmoid() first, as the book's second mnist_loss does"
            )
        if close(got, torch.where(targets == 1, sig, 1 - sig).mean()):
            raise Wrong(
                "your loss is highest when the predictions are right: where the target is 1 the loss is "
                "1 - sigmoid(prediction), where it is 0 the loss is sigmoid(prediction)"
            )
        raise Wrong(f"mnist_loss gave {got.item():.4f} where the book's gives {want.item():.4f}")
    return "sigmoid first, then how far each prediction is from its target, averaged: one number in [0, 1]"


def check_batch_accuracy(batch_accuracy: Any, ctx: CheckContext) -> str:
    g = torch.Generator().manual_seed(8)
    cases = [
        (torch.tensor([[0.3], [-0.3], [2.0], [-1.0]]), torch.tensor([[1], [0], [0], [1]])),  # logits in (0, 0.5)
        (torch.randn(100, 1, generator=g), torch.randint(0, 2, (100, 1), generator=g)),
    ]
    for xb, yb in cases:
        try:
            got = batch_accuracy(xb.clone(), yb.clone())
        except RuntimeError as e:
            if "mean(): could not infer output dtype" in str(e) or "Bool" in str(e):
                raise Wrong("the mean of True/False values needs numbers first: (...).float().mean()") from None
            raise
        value = torch.as_tensor(got, dtype=torch.float64)
        want = book_accuracy(xb, yb)
        if value.numel() == 1 and close(value.reshape(()), want):
            continue
        if value.numel() == 1 and close(value.reshape(()), ((xb > 0.5) == yb).double().mean()):
            raise Wrong(
                "you compared the raw predictions (logits) with 0.5: apply .sigmoid() first, "
                "or compare the logits with 0 (sigmoid(0) = 0.5)"
            )
        if value.numel() == 1 and close(value.reshape(()), ((xb.sigmoid() > 0.5) == yb).double().sum()):
            raise Wrong(f"batch_accuracy returned {value.item():g}, a count: divide by the batch size, .float().mean()")
        raise Wrong(f"batch_accuracy returned {describe(got)}; expected {want.item():.4f}")
    return "the fraction of predictions on the right side of 0.5 after sigmoid (logit > 0), as a number in [0, 1]"


def _as_items(batch: Any) -> list[Any]:
    if isinstance(batch, torch.Tensor):
        return list(batch.tolist())
    if isinstance(batch, (list, tuple, str)):
        return list(batch)
    raise Wrong(f"a batch is {describe(batch)}; each batch should be a list (or tensor) of items")


def check_batches(batches: Any, ctx: CheckContext) -> str:
    def run(collection: Any, bs: int, shuffle: bool) -> list[list[Any]]:
        result = batches(collection, bs, shuffle)
        if not isinstance(result, (list, tuple)) and hasattr(result, "__iter__"):
            result = list(result)
        return [_as_items(b) for b in result]

    got = run(range(15), 5, False)
    if got != [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14]]:
        raise Wrong(f"batches(range(15), 5, shuffle=False) gave {got}; expected three batches of 5 in order")
    short = run(range(17), 5, False)
    if sum(map(len, short)) == 15:
        raise Wrong("batches(range(17), 5) lost the last 2 items: keep the last, shorter batch [15, 16]")
    letters = run("abcdefg", 3, False)
    if letters != [["a", "b", "c"], ["d", "e", "f"], ["g"]]:
        raise Wrong(f"batches('abcdefg', 3, False) gave {letters}; it should work for any collection")
    orders = [run(range(15), 5, True) for _ in range(4)]
    for order in orders:
        flat = [i for b in order for i in b]
        if sorted(flat) != list(range(15)):
            raise Wrong(
                "with shuffle=True some items came twice and others never: shuffle the order of all items "
                "(random.shuffle or torch.randperm), do not draw items at random"
            )
        if [len(b) for b in order] != [5, 5, 5]:
            raise Wrong(f"with shuffle=True the batch sizes are {[len(b) for b in order]}; expected [5, 5, 5]")
    if all([sorted(b) for b in order] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14]] for order in orders):
        raise Wrong("you shuffled inside each batch only: shuffle the whole collection first, then cut it into batches")
    if all(order == orders[0] for order in orders):
        raise Wrong("shuffle=True gives the same order every time: draw a new random order at each call (each epoch)")
    return "batches of 5 in order, a shorter last batch, and with shuffle=True every item once in a new order each call"


def _init_size(seed: int) -> tuple[tuple[int, int], float]:
    g = generator(seed)
    return (int(torch.randint(100, 200, (), generator=g)), 100), float(torch.rand((), generator=g)) + 0.5


def observe_init_params(init_params: Any, seed: int) -> Any:
    size, std = _init_size(seed)
    t = as_tensor(init_params(size, std), "init_params")
    values = t.detach().double()
    return [list(t.shape), t.requires_grad, t.is_leaf, float(values.mean()), float(values.std())]


def judge_init_params(observation: Any, seed: int) -> str | None:
    (size, std), (shape, grad, leaf, mean, spread) = _init_size(seed), observation
    if shape != list(size) or grad is not True or leaf is not True:
        return f"gave shape {shape}, requires_grad {grad}, leaf {leaf} for init_params({size}, {std:.3f})"
    if not (abs(float(spread) - std) < 0.1 * std and abs(float(mean)) < 0.1 * std):
        return f"gave values of mean {float(mean):.3f} and spread {float(spread):.3f}; the spread asked is {std:.3f}"
    return None


def _linear_inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = generator(seed)
    return torch.rand(7, 28 * 28, generator=g), torch.randn(28 * 28, 1, generator=g), torch.randn(1, generator=g)


def observe_linear1(linear1: Any, seed: int) -> Any:
    return numbers(_call_linear1(linear1, *_linear_inputs(seed)))


def judge_linear1(observation: Any, seed: int) -> str | None:
    xb, weights, bias = _linear_inputs(seed)
    return differs(observation, xb.double() @ weights.double() + bias.double(), atol=1e-3)


def _logits(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = generator(seed)
    return torch.randn(20, 1, generator=g) * 3, torch.randint(0, 2, (20, 1), generator=g)


def observe_mnist_loss(mnist_loss: Any, seed: int) -> Any:
    predictions, targets = _logits(seed)
    loss = mnist_loss(predictions.clone().requires_grad_(), targets)
    return [numbers(loss), isinstance(loss, torch.Tensor) and loss.grad_fn is not None]


def judge_mnist_loss(observation: Any, seed: int) -> str | None:
    value, graph = observation
    if graph is not True:
        return "gave a loss that no gradient can flow through"
    return differs(value, book_loss(*_logits(seed)))


def observe_batch_accuracy(batch_accuracy: Any, seed: int) -> Any:
    return numbers(batch_accuracy(*_logits(seed)))


def judge_batch_accuracy(observation: Any, seed: int) -> str | None:
    return differs(float(tensor(observation).reshape(())), book_accuracy(*_logits(seed)))


def _collection(seed: int) -> tuple[int, int]:
    g = generator(seed)
    return int(torch.randint(10, 30, (), generator=g)), int(torch.randint(2, 8, (), generator=g))


def observe_batches(batches: Any, seed: int) -> Any:
    n, bs = _collection(seed)
    return [[_as_items(b) for b in batches(range(n), bs, shuffle)] for shuffle in (False, True)]


def judge_batches(observation: Any, seed: int) -> str | None:
    (n, bs), (ordered, shuffled) = _collection(seed), observation
    want = [list(range(i, min(i + bs, n))) for i in range(0, n, bs)]
    if ordered != want:
        return f"gave {str(ordered)[:200]} for batches(range({n}), {bs}, False); expected {want}"
    if sorted(i for b in shuffled for i in b) != list(range(n)) or [len(b) for b in shuffled] != [len(b) for b in want]:
        return f"gave {str(shuffled)[:200]} for batches(range({n}), {bs}, True): not every item once in batches of {bs}"
    return None


register("init_params", check_init_params, probe=Probe(observe_init_params, judge_init_params))
register("linear1", check_linear1, probe=Probe(observe_linear1, judge_linear1))
register("mnist_loss", check_mnist_loss, probe=Probe(observe_mnist_loss, judge_mnist_loss))
register("batch_accuracy", check_batch_accuracy, probe=Probe(observe_batch_accuracy, judge_batch_accuracy))
register("batches", check_batches, probe=Probe(observe_batches, judge_batches))
