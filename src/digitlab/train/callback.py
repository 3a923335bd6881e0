"""A `Callback` and the exceptions it may raise: what every callback builds on, apart from the Learner.

Callbacks run at the Learner's named events, in `order`; raising a Cancel* exception skips the
rest of a batch, an epoch or the whole fit (fastai course part 2's miniai design). See `learner.py`
for the events and the interfaces a callback may offer besides them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a callback is handed its Learner; the Learner module builds on this one
    from .learner import Learner


class CancelFitException(Exception):
    """Raised by a callback to end `fit` early (after_cancel_fit and after_fit still run)."""


class CancelEpochException(Exception):
    """Raised by a callback to skip the rest of the current epoch (train or valid pass)."""


class CancelBatchException(Exception):
    """Raised by a callback to skip the rest of the current batch."""


class Callback:
    """Base class: define methods named after events; lower `order` runs first.

    Optional, besides events (the Learner looks for them; the base class defines none):
    `forward_context(self) -> ContextManager`, entered around each batch's forward pass,
    after_predict and loss; `all_reduce(self, tensor) -> Tensor`, the sum of a tensor over
    the processes that train together; `train_step(self) -> bool`, a training batch's whole step.
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
