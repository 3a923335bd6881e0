"""Exercises on the chapter's first model: L1 and RMSE, mnist_distance with broadcasting, is_3."""

from __future__ import annotations

from typing import Any

import torch

from ..baseline import mnist_distance as book_distance
from .calling import book_globals, call_by_name, own_helpers, required_arity
from .feedback import Wrong, as_tensor, close, describe, first_difference
from .probes import Probe, differs, generator, numbers
from .registry import CheckContext, register

N_STACK = 1010  # the book's valid_3_tens has 1,010 images


def _images(n: int, seed: int) -> torch.Tensor:
    """(n, 28, 28) float in [0, 1]."""
    return torch.rand(n, 28, 28, generator=torch.Generator().manual_seed(seed))


def check_l1_and_rmse(l1_and_rmse: Any, ctx: CheckContext) -> str:
    a, b = _images(2, seed=7)
    cases = [(a, b), (a, a), (torch.full((28, 28), 0.75), torch.full((28, 28), 0.25))]  # equal: 0; constant: 0.5
    for x, y in cases:
        result = l1_and_rmse(x, y)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise Wrong(f"l1_and_rmse returned {describe(result)}; return two numbers: (l1, rmse)")
        l1, rmse = (torch.as_tensor(v, dtype=torch.float64) for v in result)
        diff = (x - y).double()
        want_l1, want_rmse = diff.abs().mean(), diff.square().mean().sqrt()
        if close(l1, want_l1) and close(rmse, want_rmse):
            continue
        if close(l1, want_rmse) and close(rmse, want_l1):
            raise Wrong("you returned (rmse, l1); return the L1 distance first: (l1, rmse)")
        if not close(l1, want_l1):
            if close(l1, diff.mean()):
                raise Wrong(
                    "your L1 is the plain mean difference: positive and negative differences cancel; "
                    "take .abs() before .mean()"
                )
            raise Wrong(f"your L1 is {l1.item():.4g}; mean absolute difference gives {want_l1.item():.4g}")
        if close(rmse, diff.square().mean()):
            raise Wrong("your RMSE is the mean squared error: take the square root of the mean, .sqrt()")
        if close(rmse, want_l1):
            raise Wrong(
                "your RMSE equals the L1 distance: a square root taken before the mean undoes each square; "
                "RMSE is sqrt(mean(diff**2)), the root after the mean"
            )
        raise Wrong(f"your RMSE is {rmse.item():.4g}; sqrt(mean((a-b)**2)) gives {want_rmse.item():.4g}")
    return "L1 = mean(|a-b|) and RMSE = sqrt(mean((a-b)**2)), as F.l1_loss and F.mse_loss(...).sqrt()"


def check_mnist_distance(mnist_distance: Any, ctx: CheckContext) -> str:
    stack, (one, ideal) = _images(N_STACK, seed=1), _images(2, seed=2)
    got = as_tensor(mnist_distance(stack, ideal), "mnist_distance")
    want = book_distance(stack, ideal)  # (1010,)
    if tuple(got.shape) != (N_STACK,):
        raise Wrong(f"your mnist_distance returns {_shape_feedback(got)}")
    if not close(got, want):
        raise Wrong(_value_feedback(got, stack, ideal, want))
    try:
        single = as_tensor(mnist_distance(one, ideal), "mnist_distance")
    except (IndexError, RuntimeError) as e:
        if "out of range" in str(e):
            raise Wrong(
                "your mnist_distance works on a stack but fails on a single (28, 28) image: mean((1, 2)) counts "
                "axes from the front; count from the end so both work: .mean((-1, -2))"
            ) from None
        raise
    if single.ndim != 0 or not close(single, book_distance(one, ideal)):
        raise Wrong(f"for two single images your mnist_distance returns {describe(single)}; expected one number")
    if not close(as_tensor(mnist_distance(ideal, ideal), "mnist_distance"), torch.tensor(0.0)):
        raise Wrong("an image's distance to itself should be 0")
    return f"one distance per image, ({N_STACK},) for a stack against the ideal digit (broadcasting), one for a pair"


def _shape_feedback(got: torch.Tensor) -> str:
    shape = tuple(got.shape)
    if shape == (N_STACK, 28):
        return f"shape {shape} — you averaged one axis; the book averages the last two, mean((-1, -2))"
    if shape == ():
        return (
            f"one number for {N_STACK} images — you averaged over every axis, the images' axis too; "
            "average over the last two only: mean((-1, -2))"
        )
    if shape in ((28,), (28, 28)):
        return (
            f"shape {shape} — you averaged over the images' axis (0); "
            "average each image's rows and columns, mean((-1, -2))"
        )
    return f"shape {shape}; for {N_STACK} images against one ideal digit it should be ({N_STACK},)"


def _value_feedback(got: torch.Tensor, stack: torch.Tensor, ideal: torch.Tensor, want: torch.Tensor) -> str:
    diff = stack - ideal
    if close(got, diff.mean((-1, -2))):
        return "your distances cancel out: positive and negative differences add to ~0; take .abs() before the mean"
    if close(got, diff.square().mean((-1, -2)).sqrt()) or close(got, diff.square().mean((-1, -2))):
        return "you computed a squared distance (RMSE or MSE); mnist_distance is the L1 one, (a-b).abs().mean((-1,-2))"
    return f"your distances differ from the book's {first_difference(got, want)}"


def _mean_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """Two "ideal digits": a vertical bar (the 3) and a horizontal bar (the 7), (28, 28) in [0, 1]."""
    mean3, mean7 = torch.zeros(28, 28), torch.zeros(28, 28)
    mean3[4:24, 12:16] = 1.0
    mean7[12:16, 4:24] = 1.0
    return mean3, mean7


def _call_is_3(is_3: Any, images: torch.Tensor, mean3: torch.Tensor, mean7: torch.Tensor) -> torch.Tensor:
    """is_3 called as the book's cell calls it: is_3(x) reading mean3 and mean7, or with them by name."""
    values = {"x": images, "mean3": mean3, "mean7": mean7}
    with book_globals(is_3, {"mean3": mean3, "mean7": mean7}, {"mnist_distance": book_distance}):
        if required_arity(is_3) == 1:
            return as_tensor(is_3(images), "is_3")
        return as_tensor(call_by_name(is_3, "is_3", values), "is_3")


def check_is_3(is_3: Any, ctx: CheckContext) -> str:
    mean3, mean7 = _mean_digits()
    weights = torch.linspace(0, 1, 40).view(-1, 1, 1)  # from pure 7 to pure 3, plus noise
    x = weights * mean3 + (1 - weights) * mean7 + 0.05 * _images(40, seed=4)
    want = book_distance(x, mean3) < book_distance(x, mean7)  # (40,) bool
    one = x[-1]

    def run(images: torch.Tensor) -> torch.Tensor:
        return _call_is_3(is_3, images, mean3, mean7)

    got = run(x)
    if tuple(got.shape) != (40,):
        raise Wrong(f"for a stack of 40 images is_3 returned {describe(got)}; it should give one answer each, (40,)")
    answers = got.bool() if got.dtype != torch.bool and bool(((got == 0) | (got == 1)).all()) else got
    if answers.dtype != torch.bool:
        raise Wrong(f"is_3 returned {describe(got)}; compare the two distances with <, which gives True/False")
    if torch.equal(answers, ~want):
        raise Wrong("is_3 says True for the images nearer the ideal 7: it is a 3 when its distance to mean3 is smaller")
    if not torch.equal(answers, want):
        hint = own_helpers(is_3, {"mnist_distance": book_distance})
        raise Wrong(f"is_3 is wrong for {int((answers != want).sum())} of 40 images{hint}")
    single = run(one)
    if single.ndim != 0 or bool(single) != bool(want[-1]):
        raise Wrong(f"for one image is_3 returned {describe(single)}; expected tensor({bool(want[-1])})")
    return "True exactly where the image is nearer mean3 than mean7, for one image and (broadcasting) for 40"


def observe_l1_and_rmse(l1_and_rmse: Any, seed: int) -> Any:
    return [numbers(v) for v in l1_and_rmse(*_images(2, seed))]


def judge_l1_and_rmse(observation: Any, seed: int) -> str | None:
    a, b = _images(2, seed)
    diff = (a - b).double()
    return differs(observation, torch.stack([diff.abs().mean(), diff.square().mean().sqrt()]))


def observe_mnist_distance(mnist_distance: Any, seed: int) -> Any:
    stack = _images(8, seed)
    return [numbers(mnist_distance(stack[1:], stack[0])), numbers(mnist_distance(stack[1], stack[0]))]


def judge_mnist_distance(observation: Any, seed: int) -> str | None:
    stack = _images(8, seed)
    many, one = observation
    return differs(many, book_distance(stack[1:], stack[0])) or differs(one, book_distance(stack[1], stack[0]))


def _is_3_inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Twelve images and two random "ideal digits", each image a mix of the two plus noise."""
    ideals = _images(2, seed)
    mix = torch.rand(12, 1, 1, generator=generator(seed + 1))
    return mix * ideals[0] + (1 - mix) * ideals[1] + 0.05 * _images(12, seed + 2), ideals[0], ideals[1]


def observe_is_3(is_3: Any, seed: int) -> Any:
    return numbers(_call_is_3(is_3, *_is_3_inputs(seed)).bool())


def judge_is_3(observation: Any, seed: int) -> str | None:
    x, mean3, mean7 = _is_3_inputs(seed)
    return differs(observation, (book_distance(x, mean3) < book_distance(x, mean7)).double())


register("l1_and_rmse", check_l1_and_rmse, probe=Probe(observe_l1_and_rmse, judge_l1_and_rmse))
register("mnist_distance", check_mnist_distance, probe=Probe(observe_mnist_distance, judge_mnist_distance))
register("is_3", check_is_3, probe=Probe(observe_is_3, judge_is_3))
