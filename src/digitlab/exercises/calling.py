"""Calling a learner's function the way the book's cells call it.

The book's functions often read notebook globals (`def linear1(xb): return xb@weights + bias`,
`def train_epoch(model, lr, params)` reading `dl`); digitlab's take them as arguments. A check
offers both: arguments by the book's parameter names, and the same values set as the function's
globals while it runs (restored afterwards, so a notebook's own `weights` survive a check).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .feedback import Wrong

_UNSET = object()


@contextmanager
def book_globals(fn: Any, values: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> Iterator[None]:
    """Set `values` as globals of `fn` (a function, or a class's methods) while inside; `defaults` only where
    the learner has no such name (their own mnist_distance, calc_grad ... are kept)."""
    namespace: dict[str, Any] | None = getattr(fn, "__globals__", None)
    if namespace is None:  # a class or another callable: its methods' module globals
        init = getattr(fn, "__init__", None)
        namespace = getattr(init, "__globals__", None)
    if namespace is None:
        yield
        return
    added = {k: v for k, v in (defaults or {}).items() if k not in namespace}
    saved = {k: namespace.get(k, _UNSET) for k in values}
    namespace.update(added)
    namespace.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is _UNSET:
                namespace.pop(k, None)
            else:
                namespace[k] = v
        for k in added:
            namespace.pop(k, None)


def call_by_name(fn: Callable[..., Any], name: str, available: Mapping[str, Any]) -> Any:
    """Call `fn`, passing each of its parameters by the book's name from `available`.

    Parameters with defaults that are not available keep their defaults; a required parameter
    with a name the checker does not know is feedback naming the ones it can pass.
    """
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return fn()
    args: dict[str, Any] = {}
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name in available:
            args[p.name] = available[p.name]
        elif p.default is p.empty:
            names = ", ".join(available)
            raise Wrong(
                f"{name} has a parameter named {p.name!r}; the checker passes the book's names ({names}): "
                "rename it, or read it from a global as the book does"
            )
    positional = [p for p in params if p.kind == p.POSITIONAL_ONLY and p.name in args]
    return fn(*(args.pop(p.name) for p in positional), **args)


def required_arity(fn: Any) -> int:
    """How many arguments `fn` needs (parameters without defaults); -1 if it cannot be told."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return -1
    return sum(1 for p in params if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))


def own_helpers(fn: Any, books: Mapping[str, Any]) -> str:
    """' (it uses your own calc_grad: check it too)' when `fn` reads learner versions of the book's helpers."""
    namespace = getattr(fn, "__globals__", None) or getattr(getattr(fn, "__init__", None), "__globals__", {})
    own = [name for name, book in books.items() if name in namespace and namespace[name] is not book]
    return f" (it uses your own {' and '.join(own)}: check {'them' if len(own) > 1 else 'it'} too)" if own else ""
