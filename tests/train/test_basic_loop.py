"""The chapter's hand-written loop: calc_grad, train_epoch, validate_epoch, BasicOptim against SGD."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from digitlab.errors import DigitlabError
from digitlab.train.basic_loop import calc_grad, train_epoch, train_model, validate_epoch
from digitlab.train.dataloader import DataLoader
from digitlab.train.losses import batch_accuracy, mnist_loss
from digitlab.train.optim import SGD, BasicOptim


def separable(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 784) float and (n, 1) int 0/1 targets that a linear model separates: the sign of pixel 0."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 784, generator=g) - 0.5
    return x, (x[:, :1] > 0).long()


def test_calc_grad_adds_the_loss_gradient():
    x, y = separable()
    model = nn.Linear(784, 1)
    loss = calc_grad(x, y, model)
    reference = nn.Linear(784, 1)
    reference.load_state_dict(model.state_dict())
    mnist_loss(reference(x), y).backward()
    assert loss.item() == pytest.approx(mnist_loss(model(x), y).item())
    torch.testing.assert_close(model.weight.grad, reference.weight.grad)


def test_basic_optim_and_sgd_take_the_same_steps():
    x, y = separable()
    dl = DataLoader((x, y), batch_size=16)
    torch.manual_seed(0)
    a = nn.Linear(784, 1)
    b = nn.Linear(784, 1)
    b.load_state_dict(a.state_dict())
    for _ in range(3):
        train_epoch(a, dl, BasicOptim(a.parameters(), 0.5))
        train_epoch(b, dl, SGD(b.parameters(), 0.5))
    torch.testing.assert_close(a.weight, b.weight, rtol=0, atol=1e-6)


def test_the_books_first_train_epoch_by_lr_and_params_learns():
    x, y = separable(256)
    dl = DataLoader((x, y), batch_size=32)
    weights = (torch.randn(784, 1, generator=torch.Generator().manual_seed(1)) * 0.01).requires_grad_()
    bias = torch.zeros(1).requires_grad_()

    def linear1(xb):
        return xb @ weights + bias

    before = validate_epoch(linear1, dl)
    for _ in range(20):
        train_epoch(linear1, dl, lr=1.0, params=(weights, bias))
    after = validate_epoch(linear1, dl)
    assert after > before and after >= 0.9
    assert after == round(torch.stack([batch_accuracy(linear1(xb), yb) for xb, yb in dl]).mean().item(), 4)


def test_train_model_prints_one_accuracy_per_epoch(capsys):
    x, y = separable()
    dl = DataLoader((x, y), batch_size=16)
    model = nn.Linear(784, 1)
    accuracies = train_model(model, 3, dl, dl, SGD(model.parameters(), 1.0))
    printed = capsys.readouterr().out.split()
    assert [float(v) for v in printed] == accuracies and len(accuracies) == 3


def test_a_long_train_model_prints_about_twenty_accuracies_and_returns_all(capsys):
    x, y = separable()
    dl = DataLoader((x, y), batch_size=16)
    model = nn.Linear(784, 1)
    accuracies = train_model(model, 140, dl, dl, SGD(model.parameters(), 0.1))
    line = capsys.readouterr().out
    printed = [float(v) for v in line.split("(")[0].split()]
    assert len(accuracies) == 140 and 15 <= len(printed) <= 21 and printed[-1] == accuracies[-1]
    assert printed == accuracies[6::7] and "140 epochs" in line  # every 7th: 7, 14, ..., 140


def test_errors_say_what_is_missing():
    x, y = separable()
    dl = DataLoader((x, y), batch_size=16)
    with pytest.raises(DigitlabError, match="needs an optimizer"):
        train_epoch(nn.Linear(784, 1), dl, lr=1.0)
    with pytest.raises(DigitlabError, match="no batches"):
        validate_epoch(nn.Linear(784, 1), [])
