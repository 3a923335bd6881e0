"""The mentor: chapter 4's common mistakes, caught where they happen and named in words, with the fix.

Two places catch them:
- `MentorCB`, one of the Learner's default callbacks, looks at the first training batch of a fit
  (the learner's own loss, metric, optimizer and data, whatever they are called) and at each
  epoch's loss; what cannot be right stops the fit with a `MentorError`, what is very likely
  wrong is a `MentorWarning`. A fit that follows the book gets neither.
- `hint_for(error)`: PyTorch's own error messages, for mistakes made in a learner's own cells
  (a manual SGD loop), matched to a hint. Inside a fit the hint is added to the error as a note;
  in Jupyter, `from digitlab.all import *` prints it under the traceback of any cell.

`CATALOGUE` lists every mistake (the README's table is made from it; a test checks each).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import DigitlabError
from .callback import Callback, callable_name


class MentorError(DigitlabError):
    """A fit that cannot teach the model anything, stopped before it wastes the learner's time."""


class MentorWarning(UserWarning):
    """A fit that runs but very likely measures or trains the wrong thing."""


@dataclass(frozen=True)
class Mistake:
    key: str
    mistake: str  # what the learner did, in the chapter's words
    hint: str  # what digitlab says: the cause and the fix


_M = [
    Mistake(
        "uint8",
        "images left as uint8 (0-255) reach a layer",
        "the images are integers (uint8, 0-255) and the layer's weights are floats: convert and scale them "
        "first, `x.float()/255`, as the book's stacked_threes",
    ),
    Mistake(
        "0-255",
        "float inputs still in 0..255",
        "the inputs go up to 255: divide by 255 (`.float()/255`, as stacked_threes) so pixels are 0..1 and "
        "the learning rates of the chapter work",
    ),
    Mistake(
        "flatten",
        "28x28 images given to a linear layer that takes 784 numbers",
        "a linear layer takes each image as one row of 28*28 = 784 numbers: flatten first, "
        "`x.view(-1, 28*28)` as train_x (or nn.Flatten() as the model's first layer)",
    ),
    Mistake(
        "binary-multiclass",
        "mnist_loss, or a one-output model, used for more than two classes",
        "mnist_loss and batch_accuracy answer one question ('is it the first class?') with one output and "
        "targets 0/1; for several digits use one output per class and cross-entropy: "
        "`nn.Linear(30, 10)`, `loss_func=F.cross_entropy`, `metrics=accuracy`",
    ),
    Mistake(
        "broadcast",
        "(N, 1) predictions against (N,) targets, or the reverse",
        "predictions and targets have different shapes, so `torch.where(targets==1, ...)` broadcasts them to "
        "an (N, N) table and the loss is a number that means nothing: give targets the predictions' shape, "
        "`.unsqueeze(1)` as the book's train_y",
    ),
    Mistake(
        "double-sigmoid-loss",
        "a model ending in a sigmoid, trained with mnist_loss",
        "the model ends in a sigmoid and mnist_loss applies another: outputs squeezed twice learn slowly; "
        "drop the model's nn.Sigmoid (the loss applies it)",
    ),
    Mistake(
        "double-sigmoid-metric",
        "a metric fed probabilities where it expects raw outputs (logits)",
        "batch_accuracy applies a sigmoid itself, and this model's outputs are already probabilities "
        "(its last layer is a sigmoid): every output is then above 0.5 and the 'accuracy' is the share of 3s. "
        "Drop the model's nn.Sigmoid",
    ),
    Mistake(
        "softmax-ce",
        "a softmax layer before cross-entropy",
        "cross-entropy takes raw outputs (logits) and applies log-softmax itself: a softmax in the model "
        "squeezes them twice and slows learning; drop the model's nn.Softmax",
    ),
    Mistake(
        "no-grad",
        "parameters made without requires_grad_(), so the loss has no gradient",
        "nothing in this loss requires a gradient: create the parameters with `.requires_grad_()` (as the "
        "book's init_params), and compute the loss with differentiable operations (not `>`, argmax, round)",
    ),
    Mistake(
        "step-loss",
        "a loss computed with a step (accuracy as the loss)",
        "this loss has no gradient: it was computed with a step (`>`, argmax, round, ==), which is flat "
        "almost everywhere, so SGD cannot move; use mnist_loss (3 vs 7) or cross_entropy, and keep accuracy "
        "as the metric",
    ),
    Mistake(
        "zero-grad",
        "gradients never zeroed between steps",
        "after opt.zero_grad() the gradients are still there: they add up batch after batch and the steps "
        "grow; zero them (`p.grad = None` or `p.grad.zero_()`) in zero_grad",
    ),
    Mistake(
        "in-place-leaf",
        "an in-place change to a parameter that requires grad",
        "a parameter that requires grad cannot be changed in place while autograd records: wrap the change "
        "in `with torch.no_grad():` (or change `p.data`, as the book's step does)",
    ),
    Mistake(
        "backward-twice",
        "loss.backward() called twice on the same loss",
        "a loss's graph is freed by backward(): compute the predictions and the loss again before each "
        "backward (as calc_grad does)",
    ),
    Mistake(
        "grad-none",
        "reading .grad before backward(), or of a tensor that does not require grad",
        "if this was a `.grad`: it is None until `loss.backward()` has run on a loss computed from a tensor "
        "created with `.requires_grad_()`",
    ),
    Mistake(
        "ce-target-shape",
        "cross-entropy given (N, 1) targets",
        "cross-entropy takes targets of shape (N,), one class index per image: `y.squeeze(1)` (the "
        "(N, 1) shape is mnist_loss's)",
    ),
    Mistake(
        "ce-target-dtype",
        "cross-entropy given float targets",
        "cross-entropy takes class indices as integers (int64): `y.long()`",
    ),
    Mistake(
        "too-few-outputs",
        "fewer model outputs than classes",
        "a target class is beyond the model's outputs: the last layer needs one output per class, "
        "e.g. nn.Linear(30, 10) for ten digits",
    ),
    Mistake(
        "diverged",
        "a learning rate so high that the loss becomes nan or inf",
        "the steps overshoot: the learning rate is too high for this model; try a tenth of it, or "
        "`learn.lr_find()` where the Learner offers it",
    ),
    Mistake(
        "valid-is-train",
        "the validation set is the training set",
        "the validation data is the training data: the metric then measures memory, not how well the "
        "model reads digits it has not seen; validate on the valid set (the book's valid_dl)",
    ),
    Mistake(
        "fit-one-cycle",
        "fit_one_cycle called on the chapter's Learner",
        "the chapter's Learner has fit(); fit_one_cycle, fine_tune and lr_find come with "
        "`cnn_learner(dls, resnet18, ...)`, or add the schedule: `learn.fit(n, lr, cbs=[OneCycleCB()])`",
    ),
]
CATALOGUE: dict[str, Mistake] = {m.key: m for m in _M}

# PyTorch's messages (torch 2.3 to 2.13) -> the mistake behind them
_MESSAGES: list[tuple[type[BaseException], str, str]] = [
    (RuntimeError, r"must have the same dtype, but got (Byte|Char|Short|Int|Long) and Float", "uint8"),
    (RuntimeError, r"m1 and m2 to have the same dtype, but got: (unsigned char|long int|int) != float", "uint8"),
    (RuntimeError, r"Input type \((unsigned char|long int|int|torch\.ByteTensor)\) and (bias|weight) type", "uint8"),
    (RuntimeError, r"shapes cannot be multiplied \(\d+x28 and 784x\d+\)", "flatten"),
    (RuntimeError, r"leaf Variable that requires grad is being used in an in-place operation", "in-place-leaf"),
    (RuntimeError, r"element 0 of tensors does not require grad", "no-grad"),
    (RuntimeError, r"Trying to backward through the graph a second time", "backward-twice"),
    (AttributeError, r"^'NoneType' object has no attribute '(data|zero_|mean|shape)'$", "grad-none"),
    (RuntimeError, r"0D or 1D target tensor expected, multi-target not supported", "ce-target-shape"),
    (RuntimeError, r"expected target dtype to be Long or Byte, but got (Float|Double|Half|Int)", "ce-target-dtype"),
    (IndexError, r"^Target -?\d+ is out of bounds", "too-few-outputs"),
    (AttributeError, r"'Learner' object has no attribute '(fit_one_cycle|fine_tune|lr_find)'", "fit-one-cycle"),
]
_ERRORS = [(kind, re.compile(pattern), key) for kind, pattern, key in _MESSAGES]
NOTE = "digitlab: "  # how a hint starts, under the error


def hint_for(error: BaseException) -> str | None:
    """The mentor's hint for an error PyTorch (or Python) raised, or None when it knows none."""
    text = str(error)
    for kind, pattern, key in _ERRORS:
        if isinstance(error, kind) and pattern.search(text):
            return CATALOGUE[key].hint
    return None


def add_hint(error: BaseException) -> None:
    """Add the hint to the error as a note (shown under it in tracebacks), once."""
    hint = hint_for(error)
    notes = getattr(error, "__notes__", [])
    if hint is not None and hasattr(error, "add_note") and not any(n.startswith(NOTE) for n in notes):
        error.add_note(NOTE + hint)


def install_notebook_hints() -> bool:
    """In IPython/Jupyter: every cell's error gets the mentor's hint under its traceback. True if installed."""
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return False

    def show(shell: Any, etype: type[BaseException], value: BaseException, tb: Any, tb_offset: Any = None) -> None:
        try:
            add_hint(value)
        finally:  # whatever happens here, the learner sees their traceback
            shell.showtraceback((etype, value, tb), tb_offset=tb_offset)

    shell.set_custom_exc((Exception,), show)
    return True


def _last_module(model: nn.Module) -> nn.Module | None:
    modules = [m for m in model.modules() if not list(m.children())]
    return modules[-1] if modules else None


def _first_tensor(data: Any) -> torch.Tensor | None:
    if isinstance(data, torch.Tensor):
        return data
    if isinstance(data, (tuple, list)) and data and isinstance(data[0], torch.Tensor):
        return data[0]
    return None


def _same_data(train: Any, valid: Any) -> bool:
    """One loader twice, one dataset object in both, or the same tensor memory (DataLoaders(dl, dl))."""
    if train is valid:
        return True
    data, other = getattr(train, "dataset", None), getattr(valid, "dataset", None)
    if data is not None and data is other:
        return True
    first, second = _first_tensor(data), _first_tensor(other)
    return (
        first is not None
        and second is not None
        and first.data_ptr() == second.data_ptr()
        and first.shape == second.shape
    )


def _warn(key: str, detail: str = "") -> None:
    warnings.warn(MentorWarning(f"{detail}{CATALOGUE[key].hint}"), stacklevel=3)


class MentorCB(Callback):
    """The chapter's mistakes in a fit: checks on the first training batch, and each epoch's loss."""

    order = 50  # after the device, layout and precision callbacks: it sees the batch the model sees
    in_search = False  # lr_find drives the loss to diverge on purpose

    def before_fit(self) -> None:
        learn = self.learn
        self.checked = False
        self.bad: torch.Tensor | None = None  # any non-finite training loss this epoch (a bool on the device)
        if not any(p.requires_grad for p in learn.model.parameters()):
            raise MentorError(CATALOGUE["no-grad"].hint)
        if _same_data(learn.dls.train, learn.dls.valid):
            _warn("valid-is-train")

    def before_batch(self) -> None:
        if self.learn.training and not self.checked:
            self._check_inputs(self.learn.batch[0])

    @contextmanager
    def forward_context(self) -> Iterator[None]:
        try:
            yield
        except Exception as error:
            add_hint(error)
            raise

    def after_loss(self) -> None:
        learn = self.learn
        if not learn.training:
            return
        finite = torch.isfinite(learn.loss.detach()).all()
        self.bad = ~finite if self.bad is None else self.bad | ~finite  # on the device: no wait per batch
        if not self.checked:
            self._check_outputs(learn.preds, learn.batch[1])
            if not learn.loss.requires_grad:
                raise MentorError(CATALOGUE["step-loss"].hint)

    def after_batch(self) -> None:
        learn = self.learn
        if learn.training and not self.checked:
            self.checked = True
            grads = [p.grad for p in learn.model.parameters() if p.grad is not None]
            if grads and any(bool(g.any()) for g in grads):
                _warn("zero-grad")

    def after_epoch(self) -> None:
        if self.learn.training and self.bad is not None and bool(self.bad):
            raise MentorError(
                f"the training loss became nan or inf in epoch {self.learn.epoch + 1} at lr "
                f"{self.learn.lr:g}: {CATALOGUE['diverged'].hint}"
            )

    def _check_inputs(self, xb: Any) -> None:
        if isinstance(xb, torch.Tensor) and xb.is_floating_point() and xb.numel():
            low, high = xb.min().item(), xb.max().item()
            if low >= 0 and 1.5 < high <= 255 and bool((xb == xb.round()).all()):
                _warn("0-255", f"the first batch's inputs run from {low:g} to {high:g}: ")

    def _check_outputs(self, preds: Any, yb: Any) -> None:
        learn = self.learn
        if not isinstance(preds, torch.Tensor) or not isinstance(yb, torch.Tensor):
            return
        names = {callable_name(learn.loss_func), *(callable_name(m) for m in learn.metrics)}
        loss_name = callable_name(learn.loss_func)
        binary = any("mnist_loss" in n or "batch_accuracy" in n for n in names)  # the book's, or a learner's own
        one_output = preds.ndim == 1 or (preds.ndim == 2 and preds.shape[1] == 1)
        if binary and one_output and yb.numel() and not yb.is_floating_point() and int(yb.max()) > 1:
            raise MentorError(f"the targets run up to {int(yb.max())}: {CATALOGUE['binary-multiclass'].hint}")
        n = preds.shape[0] if preds.ndim else 0
        if binary and {tuple(preds.shape), tuple(yb.shape)} == {(n, 1), (n,)}:
            raise MentorError(
                f"predictions {tuple(preds.shape)}, targets {tuple(yb.shape)}: {CATALOGUE['broadcast'].hint}"
            )
        last = _last_module(learn.model)
        if isinstance(last, nn.Sigmoid) and "mnist_loss" in loss_name:
            _warn("double-sigmoid-loss")
        if isinstance(last, nn.Sigmoid) and any("batch_accuracy" in callable_name(m) for m in learn.metrics):
            _warn("double-sigmoid-metric")
        if isinstance(last, (nn.Softmax, nn.LogSoftmax)) and (
            "cross_entropy" in loss_name or loss_name == "CrossEntropyLoss"
        ):
            _warn("softmax-ce")


def catalogue_table() -> str:
    """The README's table: every mistake the mentor names."""
    rows = [f"| {m.mistake} | {m.hint} |" for m in _M]
    return "\n".join(["| the mistake | what digitlab says |", "| --- | --- |", *rows])


__all__ = ["CATALOGUE", "MentorCB", "MentorError", "MentorWarning", "add_hint", "hint_for", "install_notebook_hints"]
