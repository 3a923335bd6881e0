"""Exercises on tensors and Python basics: stacking, rank and shape, slicing, comprehensions, zip."""

from __future__ import annotations

from typing import Any

import torch

from .feedback import Wrong, as_tensor, close, describe, first_difference
from .probes import Probe, differs, generator, numbers
from .registry import CheckContext, register


def _images(n: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (28, 28), generator=g, dtype=torch.uint8) for _ in range(n)]


def check_stack_images(stack_images: Any, ctx: CheckContext) -> str:
    for n in (5, 1):
        images = _images(n, seed=n)
        want = torch.stack(images).float() / 255  # (n, 28, 28) in [0, 1]
        got = as_tensor(stack_images(images), "stack_images")
        if tuple(got.shape) == (n * 28, 28):
            raise Wrong(
                f"stack_images returned shape {tuple(got.shape)} for {n} images: torch.cat joins them along the "
                f"rows; torch.stack puts them on a new first axis, giving ({n}, 28, 28)"
            )
        if tuple(got.shape) != (n, 28, 28):
            raise Wrong(f"stack_images returned shape {tuple(got.shape)} for {n} images; the book's is ({n}, 28, 28)")
        if not got.is_floating_point() or float(got.max()) > 1.0:
            raise Wrong(
                f"stack_images returned {describe(got)} with pixels up to {float(got.max()):g}: "
                "convert to float and divide by 255, so a pixel is a number between 0 and 1"
            )
        if not close(got, want):
            raise Wrong(f"stack_images changed the pixels {first_difference(got, want)}")
    return "a list of N images becomes one (N, 28, 28) float tensor in [0, 1], for N = 5 and N = 1"


def check_rank_and_shape(rank_and_shape: Any, ctx: CheckContext) -> str:
    cases = [torch.zeros(6, 28, 28), torch.zeros(7), torch.zeros(3, 4), torch.tensor(2.5)]
    for t in cases:
        want = (t.ndim, tuple(t.shape))
        result = rank_and_shape(t)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise Wrong(f"rank_and_shape returned {describe(result)}; return two things: (rank, shape)")
        rank, shape = result
        if isinstance(rank, torch.Tensor):
            rank = rank.item()
        if not isinstance(shape, (tuple, list)) or tuple(shape) != want[1]:
            raise Wrong(f"for a tensor of shape {want[1]} your shape is {describe(shape)}; use t.shape")
        if rank != want[0]:
            hint = _rank_hint(t, rank)
            raise Wrong(f"for a tensor of shape {want[1]} your rank is {rank!r}, but it has {want[0]} axes{hint}")
    return "rank = number of axes = len(t.shape), right for a stack (6, 28, 28), a vector, a matrix and a scalar"


def _rank_hint(t: torch.Tensor, rank: Any) -> str:
    if t.ndim and rank == len(t):
        return ": len(t) is the size of the first axis; the rank is len(t.shape) (or t.ndim)"
    if rank == t.numel():
        return ": that is the number of elements (numel); the rank counts axes, len(t.shape)"
    return "; the rank is len(t.shape)"


def check_double_odds(double_odds: Any, ctx: CheckContext) -> str:
    cases = [[1, 2, 3, 4, 5], [2, 4, 6], [], [-3, -2, 7, 0], [9]]
    for given in cases:
        want = [2 * o for o in given if o % 2 == 1]
        got = double_odds(list(given))
        if not isinstance(got, list):
            kind = type(got).__name__
            raise Wrong(f"double_odds returned a {kind}, not a list: write the comprehension in [square brackets]")
        if got == want:
            continue
        if got == [2 * o for o in given if o % 2 == 0]:
            raise Wrong(f"double_odds({given}) gave {got}: those are the even numbers doubled; odd means o % 2 == 1")
        if got == [2 * o for o in given]:
            raise Wrong(f"double_odds({given}) gave {got}: every number was doubled; add `if o % 2 == 1`")
        if got == [] and want:
            raise Wrong(
                f"double_odds({given}) gave []: did you test oddness after doubling? 2*o is always even; "
                "test o, then double it: [2*o for o in a if o % 2 == 1]"
            )
        raise Wrong(f"double_odds({given}) gave {got}; expected {want}")
    return "odd numbers doubled, in order, for positive, negative and empty lists: [2*o for o in a if o % 2 == 1]"


def check_double_and_select(double_and_select: Any, ctx: CheckContext) -> str:
    g = torch.Generator().manual_seed(3)
    cases = [torch.arange(1, 10).view(3, 3), torch.randint(-9, 10, (3, 3), generator=g), torch.rand(3, 3, generator=g)]
    for t in cases:
        want = (t * 2)[1:, 1:]
        got = as_tensor(double_and_select(t.clone()), "double_and_select")
        if close(got, want):
            continue
        mistakes = {
            "you took the last two rows, all three columns (t[1:] or t[-2:]); add the columns: t[1:, 1:]": (t * 2)[1:],
            "t[1:][1:] slices the rows twice; slice rows, then columns, in one index: t[1:, 1:]": (t * 2)[2:],
            "you selected one number: the bottom-right four are t[1:, 1:] (rows 1-2, columns 1-2)": (t * 2)[2:, 2:],
            "you selected the top-left four; the bottom-right four are t[1:, 1:]": (t * 2)[:2, :2],
            "the four are right but not doubled: multiply by 2 first": t[1:, 1:],
        }
        for message, wrong in mistakes.items():
            if close(got, wrong):
                raise Wrong(f"for {t.tolist()}: {message}")
        if close(got, torch.tensor([[10, 12], [16, 18]])):
            raise Wrong(f"for {t.tolist()} you returned the answer for 1..9: work on the tensor t you are given")
        raise Wrong(f"for {t.tolist()} your result is {describe(got)}; expected {want.tolist()}")
    return "tensor([[10, 12], [16, 18]]) for 1..9, and the doubled bottom-right four of any 3x3: (t*2)[1:, 1:]"


def check_zip_pairs(zip_pairs: Any, ctx: CheckContext) -> str:
    for a, b in (([1, 2, 3, 4], "abcd"), ([1, 2, 3], "ab"), ([], "")):
        want = list(zip(a, b))
        got = zip_pairs(a, b)
        if isinstance(got, zip):
            raise Wrong("zip_pairs returned a zip object, which gives its pairs once, lazily: wrap it in list(...)")
        if isinstance(got, dict):
            raise Wrong("zip_pairs returned a dict; the book wants a list of (number, letter) tuples")
        if isinstance(got, list) and got == [list(p) for p in want] and want:
            raise Wrong("zip_pairs returned lists like [1, 'a']; each pair should be a tuple (1, 'a')")
        if got != want:
            raise Wrong(f"zip_pairs({a}, {b!r}) returned {describe(got)}; expected {want}")
    return "[(1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')], and zip's stop at the shorter input"


def observe_stack_images(stack_images: Any, seed: int) -> Any:
    return numbers(stack_images(_images(3, seed)))


def judge_stack_images(observation: Any, seed: int) -> str | None:
    return differs(observation, torch.stack(_images(3, seed)).float() / 255)


def _shape(seed: int) -> tuple[int, ...]:
    g = generator(seed)
    rank = int(torch.randint(0, 5, (), generator=g))
    return tuple(int(n) for n in torch.randint(1, 6, (rank,), generator=g))


def observe_rank_and_shape(rank_and_shape: Any, seed: int) -> Any:
    rank, shape = rank_and_shape(torch.zeros(_shape(seed)))
    return [int(rank), [int(n) for n in shape]]


def judge_rank_and_shape(observation: Any, seed: int) -> str | None:
    shape = _shape(seed)
    if observation != [len(shape), list(shape)]:
        return f"gave rank and shape {observation} for a tensor of shape {shape}"
    return None


def _numbers(seed: int) -> list[int]:
    """Nine numbers, at least one odd (an answer of [] is never right by chance)."""
    numbers = torch.randint(-20, 21, (9,), generator=generator(seed)).tolist()
    return [*numbers, 2 * numbers[0] + 1]


def observe_double_odds(double_odds: Any, seed: int) -> Any:
    return list(double_odds(_numbers(seed)))


def judge_double_odds(observation: Any, seed: int) -> str | None:
    numbers, want = _numbers(seed), [2 * o for o in _numbers(seed) if o % 2 == 1]
    return None if observation == want else f"gave {str(observation)[:200]} for {numbers}; expected {want}"


def _three_by_three(seed: int) -> torch.Tensor:
    return torch.randint(-50, 50, (3, 3), generator=generator(seed))


def observe_double_and_select(double_and_select: Any, seed: int) -> Any:
    return numbers(double_and_select(_three_by_three(seed)))


def judge_double_and_select(observation: Any, seed: int) -> str | None:
    return differs(observation, (_three_by_three(seed) * 2)[1:, 1:])


def _pairs(seed: int) -> tuple[list[int], str]:
    g = generator(seed)
    n, m = (int(v) for v in torch.randint(1, 9, (2,), generator=g))  # never empty: [] is never right
    return torch.randint(0, 100, (n,), generator=g).tolist(), "".join(
        chr(97 + i) for i in torch.randint(0, 26, (m,), generator=g).tolist()
    )


def observe_zip_pairs(zip_pairs: Any, seed: int) -> Any:
    return [[a, b] if isinstance(p, tuple) else "not a tuple" for p in zip_pairs(*_pairs(seed)) for a, b in [p]]


def judge_zip_pairs(observation: Any, seed: int) -> str | None:
    a, b = _pairs(seed)
    want = [[x, y] for x, y in zip(a, b)]
    return None if observation == want else f"gave {str(observation)[:200]} for {a} and {b!r}; expected {want}"


register("stack_images", check_stack_images, probe=Probe(observe_stack_images, judge_stack_images))
register("rank_and_shape", check_rank_and_shape, probe=Probe(observe_rank_and_shape, judge_rank_and_shape))
register("double_odds", check_double_odds, probe=Probe(observe_double_odds, judge_double_odds))
register("double_and_select", check_double_and_select, probe=Probe(observe_double_and_select, judge_double_and_select))
register("zip_pairs", check_zip_pairs, probe=Probe(observe_zip_pairs, judge_zip_pairs))
