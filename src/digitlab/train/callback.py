"""A `Callback` and the exceptions it may raise: what every callback builds on, apart from the Learner.

Callbacks run at the Learner's named events, in `order`; raising a Cancel* exception skips the
rest of a batch, an epoch or the whole fit (fastai course part 2's miniai design). Besides events, a
callback may declare what it adds to each batch's forward pass (`forward_context`: autocast) and to a
sum over processes (`all_reduce`: DistributedCB). The functions at the end run a list of callbacks'
events and combine those declarations for the Learner, so that no callback probes another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a callback is handed its Learner; the Learner module builds on this one
    import torch

    from .learner import Learner


class CancelFitException(Exception):
    """Raised by a callback to end `fit` early (after_cancel_fit and after_fit still run)."""


class CancelEpochException(Exception):
    """Raised by a callback to skip the rest of the current epoch (train or valid pass)."""


class CancelBatchException(Exception):
    """Raised by a callback to skip the rest of the current batch."""


class Callback:
    """Base class: define methods named after events; lower `order` runs first.

    Besides events, a callback may override `forward_context` and `all_reduce` (below: they do
    nothing here). A callback that steps batches its own way (CudaGraphCB) replaces `learn.step_batch`
    in before_fit, calls `learn.eager_step()` for a batch it cannot step, and puts the step back in
    cleanup_fit (which runs after an error too).
    `in_search = False`: sit out `lr_finder.search(learn)` (lr_find's trial fit).
    What it means for a training step captured as one CUDA graph (`CudaGraphCB`), declared, so that
    no callback looks into another: `blocks_graphs`, why the step cannot be a graph while it runs;
    `graph_safe = True`: its after_predict/after_backward may be skipped by a graphed step.
    """

    order = 0
    in_search = True  # runs in lr_finder.search(learn), lr_find's trial fit; False: stands aside there
    blocks_graphs: str | None = None  # why a training step cannot be one CUDA graph while it runs
    graph_safe = False  # True: a graphed training step may skip its after_predict / after_backward
    learn: Learner

    def forward_context(self) -> AbstractContextManager[Any] | None:
        """A context entered around each batch's forward pass, after_predict and loss (autocast); None: none."""
        return None

    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum of `tensor` over the processes that train together (DistributedCB); one process: itself."""
        return tensor

    def state_dict(self) -> dict[str, Any]:
        """What a fit that stops after this epoch needs of this callback to go on exactly where it was:
        tensors and JSON values, by key (saved by `digitlab.train.resume`). None by default."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put back what `state_dict` gave, at the start of a resumed fit (after every before_fit)."""


def callable_name(fn: Any) -> str:
    """A function's name, also through functools.partial (e.g. partial(SGD, mom=0.9) -> SGD)."""
    fn = getattr(fn, "func", fn)
    return getattr(fn, "__name__", type(fn).__name__)


def callback_name(cb: Callback) -> str:
    """The attribute a callback is reached by on its learner: its `name`, else its class's name in
    snake case without "CB" (RecorderCB -> recorder, OneCycleCB -> one_cycle)."""
    name = getattr(cb, "name", None) or type(cb).__name__.removesuffix("CB").removesuffix("Callback")
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


def run_cbs(cbs: Sequence[Callback], event: str) -> None:
    """Each callback's method named `event`, in the list's order (the Learner keeps it sorted by `order`)."""
    for cb in cbs:
        if (method := getattr(cb, event, None)) is not None:
            method()


def with_events(run: Callable[[str], None], name: str, body: Callable[[], None], cancel: type[Exception]) -> None:
    """`run` before_{name}, body, after_{name}; a `cancel` raised in before_ or body skips to after_cancel_{name},
    and after_{name} runs after a cancel too (as in fastai): a cancelled fit still reaches after_fit, a
    cancelled epoch is still recorded."""
    try:
        run(f"before_{name}")
        body()
    except cancel:
        run(f"after_cancel_{name}")
    run(f"after_{name}")


@contextmanager
def forward_contexts(cbs: Sequence[Callback]) -> Iterator[None]:
    """Every callback's `forward_context()`, entered in `order` and left in reverse, after an error too."""
    with ExitStack() as stack:
        for cb in cbs:
            enter = getattr(cb, "forward_context", None)  # any object with an `order` may be a callback (fastai)
            if enter is not None and (context := enter()) is not None:
                stack.enter_context(context)
        yield


def all_reduced(cbs: Sequence[Callback], tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` through each callback's `all_reduce` in turn: its sum over every process that trains."""
    for cb in cbs:
        if (reduce := getattr(cb, "all_reduce", None)) is not None:  # as forward_contexts: any object may be one
            tensor = reduce(tensor)
    return tensor
