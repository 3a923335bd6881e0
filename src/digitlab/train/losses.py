"""Loss functions and the accuracy metric, written out so every step can be read.

`mnist_loss` is the book's binary loss (one output column, "how far from the right side
of 0.5"); `cross_entropy` is its multi-class successor (one column per class). Both check
their inputs, because the classic mistake here is silent: a (N,) target against (N, 1)
predictions broadcasts to an (N, N) matrix and the loss still comes out as a number.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import DigitlabError

# (predictions, targets) -> a 0-dim tensor: a loss function, or a metric such as batch_accuracy
LossFunc = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_binary(predictions: torch.Tensor, targets: torch.Tensor, what: str, values: bool = True) -> None:
    """Shapes and (with `values`) values for the one-output (3-vs-7) convention.

    Accepted: (N, 1) predictions with (N, 1) targets (the chapter's `train_y.unsqueeze(1)`), or
    (N,) with (N,) (the book's `mnist_loss(tensor([0.9, 0.4, -0.2]), tensor([1, 0, 1]))`).
    Targets may be float, int or bool, but only 0 and 1. A mix of (N, 1) and (N,) is refused:
    it would broadcast to an (N, N) matrix and the loss would still come out as a number.
    """
    if predictions.ndim == 2 and predictions.shape[1] != 1:
        raise DigitlabError(
            f'{what} is for one output per image ("is it a 3?"), but the predictions have {predictions.shape[1]} '
            f"columns; for {predictions.shape[1]} classes use cross_entropy with (N,) int64 class indices "
            "(e.g. Learner(dls, model, loss_func=cross_entropy, metrics=batch_accuracy))"
        )
    if predictions.ndim not in (1, 2):
        raise DigitlabError(f"{what} wants predictions of shape (N, 1) or (N,), got {tuple(predictions.shape)}")
    n = predictions.shape[0]
    if targets.shape != predictions.shape:
        if predictions.ndim == 2 and targets.shape == (n,):
            raise DigitlabError(
                f"{what} got predictions ({n}, 1) but targets ({n},); use targets.unsqueeze(1) "
                f"(a ({n},) target would broadcast to ({n}, {n}))"
            )
        if predictions.ndim == 1 and targets.shape == (n, 1):
            raise DigitlabError(
                f"{what} got predictions ({n},) but targets ({n}, 1); use targets.squeeze(1) "
                f"(a ({n}, 1) target would broadcast to ({n}, {n}))"
            )
        raise DigitlabError(
            f"{what} wants targets shaped like the predictions {tuple(predictions.shape)}, got {tuple(targets.shape)}"
        )
    if n == 0:
        raise DigitlabError(f"{what} got an empty batch (the mean of nothing is nan)")
    if values:
        _check_zero_one(targets, what)


# The value checks read the targets on the host: on a GPU a wait for the device per batch, and inside
# a CUDA graph's capture an error. digitlab's own training checks a dataset's targets once
# (`validate_targets`) and calls the losses with check_targets=False.
def _check_zero_one(targets: torch.Tensor, what: str) -> None:
    if bool(((targets != 0) & (targets != 1)).any()):
        raise DigitlabError(
            f"{what} wants targets of 0 or 1 (1 for the first class, the 3s); "
            "for class indices 0..C-1 use cross_entropy"
        )


def _check_class_range(targets: torch.Tensor, c: int, what: str) -> None:
    if bool(((targets < 0) | (targets >= c)).any()):
        raise DigitlabError(
            f"{what} targets must lie in 0..{c - 1} for {c} logit columns, "
            f"got values from {int(targets.min())} to {int(targets.max())}"
        )


def validate_targets(targets: torch.Tensor, n_outputs: int) -> None:
    """A whole dataset's targets checked once, as the losses check each batch's: 0/1 for one output
    (mnist_loss), class indices 0..n_outputs-1 otherwise (cross_entropy). One read on the host."""
    if n_outputs == 1:
        _check_zero_one(targets, "mnist_loss")
    else:
        _check_class_range(targets, n_outputs, "cross_entropy")


def mnist_loss(predictions: torch.Tensor, targets: torch.Tensor, *, check_targets: bool = True) -> torch.Tensor:
    """The book's loss: mean distance of sigmoid(prediction) from the correct side.

    predictions: (N, 1) or (N,) float logits (any real number)
    targets:     the same shape, 1 for the first class ("3"), 0 for the other ("7");
                 float, int (the book's `tensor([1]*len(threes) + [0]*len(sevens))`) or bool
    returns:     0-dim float, in [0, 1]
    check_targets=False skips the 0/1 check of the targets' values (a host read; see validate_targets).
    """
    _check_binary(predictions, targets, "mnist_loss", values=check_targets)
    predictions = predictions.sigmoid()  # squash to (0, 1) so the loss is bounded
    return torch.where(targets == 1, 1 - predictions, predictions).mean()


def log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """log(softmax(logits)) along dim 1, computed without overflow.

    logits: (N, C) float -> (N, C) float, each row's exp() sums to 1.
    log softmax(x)_c = x_c - log sum_j exp(x_j); subtracting the row max m first keeps every
    exp() in (0, 1], and m cancels exactly: x_c - m - log sum_j exp(x_j - m).
    """
    # The max is a constant shift: detaching it keeps autograd from carrying a term that is 0.
    row_max = logits.detach().amax(dim=1, keepdim=True)  # (N, 1)
    shifted = logits - row_max  # (N, C), all <= 0
    return shifted - shifted.exp().sum(dim=1, keepdim=True).log()


def cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0, *, check_targets: bool = True
) -> torch.Tensor:
    """Mean negative log-likelihood of the right class, like `F.cross_entropy`.

    logits:  (N, C) float, one raw score per class
    targets: (N,) int64 class indices in 0..C-1
    label_smoothing: eps in [0, 1]; the target becomes (1 - eps) on the right class plus
        eps/C spread over all classes, which stops the model chasing infinite logits.
    check_targets=False skips the range check of the targets' values (a host read; see validate_targets).
    returns: 0-dim float
    """
    if logits.ndim != 2:
        raise DigitlabError(f"cross_entropy wants logits of shape (N, C), got {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise DigitlabError(f"cross_entropy wants float logits, got {logits.dtype}")
    n, c = logits.shape
    if targets.is_floating_point() or targets.dtype == torch.bool:
        raise DigitlabError(
            f"cross_entropy wants (N,) int64 class indices, got {tuple(targets.shape)} {targets.dtype} targets; "
            "for (N, 1) float 0/1 targets use mnist_loss"
        )
    if targets.ndim != 1:
        raise DigitlabError(f"cross_entropy wants targets of shape ({n},), got {tuple(targets.shape)}")
    if targets.shape[0] != n:
        raise DigitlabError(f"cross_entropy got {n} rows of logits but {targets.shape[0]} targets")
    if n == 0:
        raise DigitlabError("cross_entropy got an empty batch (the mean of nothing is nan)")
    if check_targets:
        _check_class_range(targets, c, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise DigitlabError(f"label_smoothing must be between 0 and 1, got {label_smoothing}")

    log_probs = log_softmax(logits)  # (N, C)
    # gather picks log p[i, targets[i]] for each row i: (N, 1) -> (N,)
    nll = -log_probs.gather(1, targets.long().unsqueeze(1)).squeeze(1)
    if label_smoothing == 0.0:
        return nll.mean()
    # The eps/C part of the target puts weight 1/C on every class: its loss is -mean_c log p_c.
    uniform = -log_probs.mean(dim=1)  # (N,)
    return ((1.0 - label_smoothing) * nll + label_smoothing * uniform).mean()


def batch_accuracy(predictions: torch.Tensor, targets: torch.Tensor, *, check_targets: bool = True) -> torch.Tensor:
    """Fraction of correct predictions, as a 0-dim float tensor.

    One output ((N, 1) or (N,) logits, targets shaped alike, 0/1 of any dtype): a prediction
    says "first class" when its logit is > 0, which is sigmoid > 0.5. The threshold is on
    logits, as the book's erratum says (its first print compared logits to 0.5).
    C > 1 outputs ((N, C) logits, (N,) int64 targets): correct when the argmax is the target.
    check_targets=False skips the 0/1 check of one output's targets (a host read; see validate_targets).
    """
    if predictions.ndim == 1 or (predictions.ndim == 2 and predictions.shape[1] == 1):
        _check_binary(predictions, targets, "batch_accuracy", values=check_targets)
        correct = (predictions > 0) == targets.bool()  # (N, 1) or (N,) bool
    elif predictions.ndim == 2:
        n = predictions.shape[0]
        if targets.shape != (n,) or targets.is_floating_point():
            hint = "; use targets.squeeze(1)" if targets.shape == (n, 1) else ""
            raise DigitlabError(
                f"batch_accuracy with {predictions.shape[1]} columns wants ({n},) int64 class indices, "
                f"got {tuple(targets.shape)} {targets.dtype}{hint}"
            )
        correct = predictions.argmax(dim=1) == targets  # (N,) bool
    else:
        raise DigitlabError(
            f"batch_accuracy wants predictions of shape (N, 1), (N,) or (N, C), got {tuple(predictions.shape)}"
        )
    if correct.numel() == 0:
        raise DigitlabError("batch_accuracy got an empty batch")
    return correct.float().mean()


def accuracy(inp: torch.Tensor, targ: torch.Tensor, axis: int = -1) -> torch.Tensor:
    """fastai's `accuracy` (the "Going Deeper" metric): the argmax of (N, C) outputs against (N,)
    class indices, as a 0-dim float tensor. A one-output model has no argmax to take: batch_accuracy."""
    if inp.ndim < 2 or inp.shape[axis] < 2:
        raise DigitlabError(
            f"accuracy takes the argmax of several outputs per item, got shape {tuple(inp.shape)}: "
            "a model with one output (3 vs 7, mnist_loss) is judged by batch_accuracy"
        )
    predicted = inp.argmax(dim=axis)
    if predicted.shape != targ.shape and predicted.numel() == targ.numel():
        targ = targ.reshape(predicted.shape)  # (N, 1) targets, as fastai's flatten_check allows
    if predicted.shape != targ.shape:
        raise DigitlabError(f"accuracy: {tuple(predicted.shape)} predictions against {tuple(targ.shape)} targets")
    return (predicted == targ).float().mean()


def error_rate(inp: torch.Tensor, targ: torch.Tensor, axis: int = -1) -> torch.Tensor:
    """fastai's `error_rate`: 1 - accuracy."""
    return 1 - accuracy(inp, targ, axis)
