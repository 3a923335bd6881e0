"""Losses against PyTorch's reference: same values, same gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from digitlab.errors import DigitlabError
from digitlab.train.losses import batch_accuracy, cross_entropy, log_softmax, mnist_loss, validate_targets


def book_mnist_loss(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Chapter 4, verbatim."""
    predictions = predictions.sigmoid()
    return torch.where(targets == 1, 1 - predictions, predictions).mean()


def value_and_grad(fn, x: torch.Tensor, *args, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.detach().clone().requires_grad_()
    loss = fn(x, *args, **kwargs)
    loss.backward()
    return loss.detach(), x.grad


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mnist_loss_matches_book_values_and_grads(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    preds = torch.randn(64, 1, generator=g) * 3  # (64, 1) logits
    targets = torch.randint(0, 2, (64, 1), generator=g).float()
    ours, ours_grad = value_and_grad(mnist_loss, preds, targets)
    ref, ref_grad = value_and_grad(book_mnist_loss, preds, targets)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(ours_grad, ref_grad)
    assert ours.ndim == 0 and 0 <= ours.item() <= 1


def test_mnist_loss_book_example() -> None:
    # The book's trgts/prds example: confident right answers give a small loss.
    trgts = torch.tensor([1, 0, 1]).float().unsqueeze(1)
    prds = torch.tensor([0.9, 0.4, 0.2])
    logits = torch.logit(prds).unsqueeze(1)
    torch.testing.assert_close(mnist_loss(logits, trgts), torch.tensor(0.4333), atol=1e-4, rtol=0)


def test_mnist_loss_takes_the_books_int_and_one_d_targets() -> None:
    # The book: mnist_loss(tensor([0.9, 0.4, -0.2]), tensor([1, 0, 1])) and int train_y.unsqueeze(1)
    logits = torch.tensor([0.9, 0.4, -0.2])
    trgts = torch.tensor([1, 0, 1])
    expected = book_mnist_loss(logits, trgts.float())
    torch.testing.assert_close(mnist_loss(logits, trgts), expected)
    torch.testing.assert_close(mnist_loss(logits.unsqueeze(1), trgts.unsqueeze(1)), expected)
    torch.testing.assert_close(mnist_loss(logits, trgts.bool()), expected)


@pytest.mark.parametrize(
    "preds, targets, message",
    [
        (torch.zeros(4, 1), torch.zeros(4), r"targets\.unsqueeze\(1\)"),
        (torch.zeros(4), torch.zeros(4, 1), r"targets\.squeeze\(1\)"),
        (torch.zeros(4, 10), torch.zeros(4, 1), r"one output per image.*10 columns.*use cross_entropy"),
        (torch.zeros(4, 1), torch.tensor([[0.0], [1.0], [2.0], [1.0]]), "targets of 0 or 1"),
        (torch.zeros(4, 1), torch.tensor([[0], [1], [2], [1]]), "class indices 0..C-1 use cross_entropy"),
        (torch.zeros(4, 1, 1), torch.zeros(4, 1, 1), r"predictions of shape \(N, 1\) or \(N,\)"),
        (torch.zeros(4, 1), torch.zeros(3, 1), r"targets shaped like the predictions \(4, 1\)"),
        (torch.zeros(0, 1), torch.zeros(0, 1), "empty batch"),
    ],
)
def test_mnist_loss_errors(preds: torch.Tensor, targets: torch.Tensor, message: str) -> None:
    with pytest.raises(DigitlabError, match=message):
        mnist_loss(preds, targets)


@pytest.mark.parametrize("n, c", [(1, 2), (32, 10), (7, 3)])
def test_cross_entropy_matches_torch_values_and_grads(n: int, c: int) -> None:
    g = torch.Generator().manual_seed(n * 100 + c)
    logits = torch.randn(n, c, generator=g) * 4
    targets = torch.randint(0, c, (n,), generator=g)
    ours, ours_grad = value_and_grad(cross_entropy, logits, targets)
    ref, ref_grad = value_and_grad(F.cross_entropy, logits, targets)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(ours_grad, ref_grad)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5, 1.0])
def test_cross_entropy_label_smoothing_matches_torch(eps: float) -> None:
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(16, 10, generator=g) * 3
    targets = torch.randint(0, 10, (16,), generator=g)
    ours, ours_grad = value_and_grad(cross_entropy, logits, targets, label_smoothing=eps)
    ref, ref_grad = value_and_grad(F.cross_entropy, logits, targets, label_smoothing=eps)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(ours_grad, ref_grad)


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_cross_entropy_is_stable_at_extreme_logits(eps: float) -> None:
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0], [3.0, 2.0, 1e4], [-1e4, -1e4, -1e4]])
    targets = torch.tensor([0, 2, 1, 1])  # right, wrong, wrong, a tie

    # The naive formula overflows: exp(1e4) = inf, inf/inf = nan, log(0) = -inf.
    naive = -(logits.exp() / logits.exp().sum(1, keepdim=True)).log()
    assert not torch.isfinite(naive).all()
    assert not torch.isfinite(logits.softmax(1).log()).all()  # even torch's softmax, then log, gives -inf

    ours, ours_grad = value_and_grad(cross_entropy, logits, targets, label_smoothing=eps)
    ref, ref_grad = value_and_grad(F.cross_entropy, logits, targets, label_smoothing=eps)
    assert torch.isfinite(ours) and torch.isfinite(ours_grad).all()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(ours_grad, ref_grad)


def test_log_softmax_matches_torch() -> None:
    logits = torch.tensor([[1e4, 0.0, -1e4], [1.0, 2.0, 3.0]])
    torch.testing.assert_close(log_softmax(logits), F.log_softmax(logits, dim=1))


@pytest.mark.parametrize(
    "logits, targets, message",
    [
        (torch.zeros(4, 1), torch.zeros(4, 1), r"int64 class indices.*use mnist_loss"),
        (torch.zeros(4, 3), torch.tensor([0, 1, 3, 2]), r"must lie in 0\.\.2.*from 0 to 3"),
        (torch.zeros(4, 3), torch.tensor([0, -1, 2, 2]), r"must lie in 0\.\.2"),
        (torch.zeros(4), torch.zeros(4, dtype=torch.int64), r"logits of shape \(N, C\)"),
        (torch.zeros(2, 4, 3), torch.zeros(2, dtype=torch.int64), r"logits of shape \(N, C\)"),
        (torch.zeros(4, 3), torch.zeros(4, 1, dtype=torch.int64), r"targets of shape \(4,\)"),
        (torch.zeros(4, 3), torch.zeros(5, dtype=torch.int64), "4 rows of logits but 5 targets"),
        (torch.zeros(4, 3, dtype=torch.int64), torch.zeros(4, dtype=torch.int64), "float logits"),
        (torch.zeros(0, 3), torch.zeros(0, dtype=torch.int64), "empty batch"),
    ],
)
def test_cross_entropy_errors(logits: torch.Tensor, targets: torch.Tensor, message: str) -> None:
    with pytest.raises(DigitlabError, match=message):
        cross_entropy(logits, targets)


def test_cross_entropy_rejects_bad_label_smoothing() -> None:
    with pytest.raises(DigitlabError, match="label_smoothing must be between 0 and 1"):
        cross_entropy(torch.zeros(2, 3), torch.zeros(2, dtype=torch.int64), label_smoothing=1.5)


def test_batch_accuracy_binary_is_the_books() -> None:
    preds = torch.tensor([[2.0], [-1.0], [0.5], [-3.0]])  # sigmoid > 0.5 iff logit > 0
    targets = torch.tensor([[1.0], [1.0], [0.0], [0.0]])
    acc = batch_accuracy(preds, targets)
    assert acc.ndim == 0 and acc.dtype == torch.float32
    assert acc.item() == 0.5
    book = ((preds.sigmoid() > 0.5) == targets).float().mean()
    assert acc.item() == book.item()
    # int targets and the book's 1-d form give the same answer
    assert batch_accuracy(preds, targets.long()).item() == 0.5
    assert batch_accuracy(preds.squeeze(1), targets.squeeze(1).long()).item() == 0.5


def test_batch_accuracy_multiclass_uses_argmax() -> None:
    preds = torch.tensor([[0.1, 2.0, 0.3], [5.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    acc = batch_accuracy(preds, torch.tensor([1, 0, 0]))
    assert acc.ndim == 0 and acc.dtype == torch.float32
    assert acc.item() == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    "preds, targets, message",
    [
        (torch.zeros(4, 1), torch.zeros(4), r"targets\.unsqueeze\(1\)"),
        (torch.zeros(4, 3), torch.zeros(4, 1, dtype=torch.int64), r"wants \(4,\) int64 class indices.*squeeze\(1\)"),
        (torch.zeros(4, 3), torch.zeros(4), r"wants \(4,\) int64 class indices"),
        (torch.zeros(4, 1, 1), torch.zeros(4), r"\(N, 1\), \(N,\) or \(N, C\)"),
    ],
)
def test_batch_accuracy_errors(preds: torch.Tensor, targets: torch.Tensor, message: str) -> None:
    with pytest.raises(DigitlabError, match=message):
        batch_accuracy(preds, targets)


def test_check_targets_false_skips_only_the_value_checks_which_validate_targets_does_once():
    """digitlab's training checks a dataset's targets once and its losses skip the per-batch read on the host."""
    bad_binary, bad_classes = torch.tensor([[0.0], [2.0]]), torch.tensor([0, 3])
    assert mnist_loss(torch.zeros(2, 1), bad_binary, check_targets=False).item() == pytest.approx(0.5)
    assert batch_accuracy(torch.zeros(2, 1), bad_binary, check_targets=False).item() == pytest.approx(0.5)
    logits = torch.zeros(2, 4)
    assert cross_entropy(logits, bad_classes, check_targets=False).item() == pytest.approx(math.log(4))
    with pytest.raises(DigitlabError, match="targets of 0 or 1"):
        validate_targets(bad_binary, 1)
    with pytest.raises(DigitlabError, match=r"must lie in 0\.\.2 for 3 logit columns, got values from 0 to 3"):
        validate_targets(bad_classes, 3)
    validate_targets(torch.tensor([[0.0], [1.0]]), 1)
    validate_targets(bad_classes, 4)
    with pytest.raises(DigitlabError, match=r"got predictions \(2, 1\) but targets \(2,\)"):  # shapes: always checked
        mnist_loss(torch.zeros(2, 1), torch.zeros(2), check_targets=False)


def test_accuracy_and_error_rate_are_fastais():
    from digitlab import accuracy, error_rate

    outputs = torch.tensor([[2.0, 0.1, 0.3], [0.0, 1.0, 0.5], [0.2, 0.1, 0.9], [1.0, 3.0, 0.0]])  # (4, 3)
    targets = torch.tensor([0, 1, 1, 1])
    assert accuracy(outputs, targets).item() == pytest.approx(0.75)
    assert error_rate(outputs, targets).item() == pytest.approx(0.25)
    assert accuracy(outputs, targets[:, None]).item() == pytest.approx(0.75)  # (N, 1) targets, as fastai
    with pytest.raises(DigitlabError, match="judged by batch_accuracy"):
        accuracy(torch.zeros(4, 1), torch.zeros(4, 1))
    with pytest.raises(DigitlabError, match=r"\(4,\) predictions against \(3,\) targets"):
        accuracy(outputs, targets[:3])
