"""Feedback a beginner can act on: what a check found wrong, and how a learner's value looks.

A check raises `Wrong("...")` with the words to show; anything else the learner's code raises is
turned into a sentence by `explain_error`, naming the line of the learner's own file, never a
traceback of digitlab.
"""

from __future__ import annotations

import traceback
from collections.abc import Collection
from typing import Any

import torch

from ..errors import DigitlabError


class Wrong(Exception):
    """What a check found wrong, in a beginner's words (the message is the feedback)."""


class Missing(Wrong):
    """The submission does not define the name an exercise asks for."""


class CheckerError(DigitlabError):
    """The checker itself cannot run (e.g. no data for the ten-digit exercise): not the learner's fault."""


def describe(value: Any) -> str:
    """A value as a beginner reads it: 'a float32 tensor of shape (1010, 28)', 'a list of 3 items'."""
    if isinstance(value, torch.Tensor):
        if value.ndim == 0:
            return f"a 0-dim {_dtype(value)} tensor ({value.item():.4g})"
        return f"a {_dtype(value)} tensor of shape {tuple(value.shape)}"
    if value is None:
        return "None (is a `return` missing?)"
    if isinstance(value, (list, tuple)):
        kind = type(value).__name__
        return f"a {kind} of {len(value)} item{'s' if len(value) != 1 else ''}: {_short(value)}"
    if isinstance(value, (int, float, bool, str)):
        return f"the {type(value).__name__} {value!r}"
    return f"a {type(value).__name__} object"


def _dtype(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def as_tensor(value: Any, what: str) -> torch.Tensor:
    """The learner's value as a tensor, or Wrong saying what it was instead."""
    if isinstance(value, torch.Tensor):
        return value
    raise Wrong(f"{what} returned {describe(value)}; it should return a tensor")


def expect_shape(got: torch.Tensor, shape: tuple[int, ...], what: str) -> None:
    if tuple(got.shape) != shape:
        raise Wrong(f"{what} returned shape {tuple(got.shape)}; it should be {shape}")


def close(got: torch.Tensor, want: torch.Tensor, atol: float = 1e-5) -> bool:
    """Same shape and (float) values within `atol` (a relative 1e-4 too)."""
    if tuple(got.shape) != tuple(want.shape):
        return False
    return bool(torch.allclose(got.detach().double(), want.detach().double(), atol=atol, rtol=1e-4, equal_nan=False))


def first_difference(got: torch.Tensor, want: torch.Tensor) -> str:
    """'at index (3,): yours 0.12, the book's 0.35' for the first value that differs."""
    diff = (got.detach().double() - want.detach().double()).abs().reshape(-1)
    i = int(diff.argmax())
    index = tuple(int(v) for v in torch.unravel_index(torch.tensor(i), tuple(want.shape))) if want.ndim else ()
    return f"at index {index}: yours {got.reshape(-1)[i].item():.4g}, expected {want.reshape(-1)[i].item():.4g}"


def explain_error(error: BaseException, what: str, learner_files: Collection[str]) -> str:
    """A sentence for an exception raised while running the learner's code, naming their line."""
    where = _learner_line(error, learner_files)
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    kind = type(error).__name__
    if isinstance(error, SyntaxError):
        return f"{what} has a syntax error (line {error.lineno} of {error.filename}): {error.msg}"
    if isinstance(error, MemoryError) or "can't allocate memory" in message:
        return f"{what} ran out of memory{where}: it asked for more than the memory limit allows"
    if isinstance(error, RecursionError):
        return f"{what} calls itself without end{where} (RecursionError)"
    if isinstance(error, NameError):
        return f"{what} uses a name that is not defined{where}: {message}. Define it (or import it) in your file"
    if isinstance(error, EOFError):
        return f"{what} asked for typed input{where} (input()), which a check cannot give: leave it out"
    if isinstance(error, SystemExit):
        return f"{what} called exit(){where}; leave that out of code to be checked"
    if "in-place operation" in message and "leaf Variable" in message:
        return (
            f"{what} changed a parameter in place while PyTorch tracks its gradient{where}: "
            "update p.data (p.data -= p.grad * lr) or do it inside `with torch.no_grad():`"
        )
    if "shapes cannot be multiplied" in message:
        shapes = message[message.find("(") :]
        return (
            f"{what} multiplied matrices whose inner sizes differ{where}: {shapes}. a @ b needs a's columns to "
            "equal b's rows, (N, 784) @ (784, 1): check the order (xb @ weights) and the shapes"
        )
    if "Boolean value of Tensor with more than one value is ambiguous" in message:
        return (
            f"{what} used `if`, `and`, `or` or `not` on a tensor of many values{where}: those ask one yes/no "
            "question; compare whole tensors instead (a < b gives one answer per element)"
        )
    if (
        isinstance(error, TypeError)
        and not where
        and ("positional argument" in message or "keyword argument" in message)
    ):
        # Raised by the call itself, not inside their code: the function takes other arguments than the exercise's
        return (
            f"{what} cannot be called the way the exercise calls it ({message}): give it the arguments that "
            "`digitlab exercises show` names, in that order"
        )
    return f"{what} raised {kind}{where}: {message}"


def _learner_line(error: BaseException, learner_files: Collection[str]) -> str:
    """' (line 12 of mywork.py: `return (a-b).mean((1,2))`)' for the deepest frame in the learner's code."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename in learner_files]
    if not frames:
        return ""
    frame = frames[-1]
    code = f": `{frame.line.strip()}`" if frame.line else ""
    return f" (line {frame.lineno} of {frame.filename}{code})"
