"""Our SGD against torch.optim.SGD (and the book's BasicOptim): same parameters after many steps."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from digitlab.errors import DigitlabError
from digitlab.train.optim import SGD, BasicOptim


class BooksBasicOptim:
    """Chapter 4's, verbatim: the reference the library's BasicOptim and SGD are held to."""

    def __init__(self, params, lr):
        self.params, self.lr = list(params), lr

    def step(self, *args, **kwargs):
        for p in self.params:
            p.data -= p.grad.data * self.lr

    def zero_grad(self, *args, **kwargs):
        for p in self.params:
            p.grad = None


def small_mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 3))


def train(model: nn.Module, opt, steps: int = 50) -> None:
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(32, 20, generator=g)  # (32, 20) a fresh random batch each step
        y = torch.randint(0, 3, (32,), generator=g)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()


@pytest.mark.parametrize("mom, wd", [(0.0, 0.0), (0.9, 0.0), (0.9, 1e-2)])
def test_sgd_matches_torch_sgd(mom: float, wd: float) -> None:
    ours, ref = small_mlp(), small_mlp()
    train(ours, SGD(ours.parameters(), lr=0.1, mom=mom, wd=wd))
    train(ref, torch.optim.SGD(ref.parameters(), lr=0.1, momentum=mom, weight_decay=wd))
    start = small_mlp()
    for p_ours, p_ref, p_start in zip(ours.parameters(), ref.parameters(), start.parameters()):
        torch.testing.assert_close(p_ours, p_ref)
        assert not torch.equal(p_ours, p_start)  # it did train


def test_basic_optim_and_sgd_without_extras_are_the_books_basic_optim() -> None:
    # The book's linear model on the 3-vs-7 layout: weights (784, 1), bias (1,), mnist-style loss.
    torch.manual_seed(0)
    weights, bias = torch.randn(784, 1).requires_grad_(), torch.randn(1).requires_grad_()
    x, y = torch.rand(64, 784), torch.randint(0, 2, (64, 1)).float()

    def loss_of(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        p = (x @ w + b).sigmoid()
        return torch.where(y == 1, 1 - p, p).mean()

    trained = []
    for optimizer in (BooksBasicOptim, BasicOptim, SGD):  # the book's, the library's copy of it, and SGD
        params = [weights.detach().clone().requires_grad_(), bias.detach().clone().requires_grad_()]
        opt = optimizer(params, lr=1.0)
        for _ in range(10):
            loss_of(*params).backward()
            opt.step()
            opt.zero_grad()
        trained.append(params)
    for params in trained[1:]:
        for a, b in zip(params, trained[0]):
            torch.testing.assert_close(a, b)


def test_zero_grad_sets_none_like_torch() -> None:
    model = small_mlp()
    opt = SGD(model.parameters(), lr=0.1)
    model(torch.randn(2, 20)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    model(torch.randn(2, 20)).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())


def test_step_skips_params_without_grad_and_builds_no_graph() -> None:
    used, unused = torch.ones(3, requires_grad=True), torch.ones(3, requires_grad=True)
    opt = SGD([used, unused], lr=0.5, mom=0.9, wd=0.1)
    (used * 2).sum().backward()
    opt.step()
    torch.testing.assert_close(used.detach(), torch.full((3,), 1 - 0.5 * (2 + 0.1)))
    assert torch.equal(unused.detach(), torch.ones(3))
    assert used.grad_fn is None and used.is_leaf


def test_lr_is_read_from_param_groups_each_step() -> None:
    p = torch.zeros(1, requires_grad=True)
    opt = SGD([p], lr=1.0)
    assert opt.lr == 1.0 and opt.param_groups[0]["lr"] == 1.0
    opt.param_groups[0]["lr"] = 0.25  # what a scheduler does
    assert opt.lr == 0.25
    p.grad = torch.ones(1)
    opt.step()
    assert p.item() == -0.25
    opt.lr = 0.5  # the book's style writes through to the group
    assert opt.param_groups[0]["lr"] == 0.5
    opt.step()
    assert p.item() == -0.75


def test_torch_lr_schedulers_drive_it() -> None:
    model = small_mlp()
    ours = SGD(model.parameters(), lr=0.1, mom=0.9)
    ref = torch.optim.SGD(small_mlp().parameters(), lr=0.1, momentum=0.9)
    s_ours = torch.optim.lr_scheduler.OneCycleLR(ours, max_lr=0.1, total_steps=10)
    s_ref = torch.optim.lr_scheduler.OneCycleLR(ref, max_lr=0.1, total_steps=10)
    for _ in range(5):
        ours.step(), ref.step()
        s_ours.step(), s_ref.step()
        assert ours.lr == pytest.approx(ref.param_groups[0]["lr"])
        assert ours.mom == pytest.approx(ref.param_groups[0]["momentum"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lr": -0.1}, "lr must be >= 0"),
        ({"lr": 0.1, "mom": -1.0}, "mom must be >= 0"),
        ({"lr": 0.1, "wd": float("nan")}, "wd must be >= 0"),
    ],
)
def test_bad_hyperparameters(kwargs: dict, message: str) -> None:
    with pytest.raises(DigitlabError, match=message):
        SGD([torch.zeros(1, requires_grad=True)], **kwargs)


def test_bad_params() -> None:
    with pytest.raises(DigitlabError, match="no parameters"):
        SGD([], lr=0.1)
    with pytest.raises(DigitlabError, match=r"pass \[tensor\]"):
        SGD(torch.zeros(3, requires_grad=True), lr=0.1)
    with pytest.raises(DigitlabError, match="leaf tensors"):
        SGD([torch.zeros(3, requires_grad=True) * 2], lr=0.1)


def test_state_dict_round_trip_keeps_momentum() -> None:
    a, b = small_mlp(), small_mlp()
    opt_a = SGD(a.parameters(), lr=0.1, mom=0.9)
    train(a, opt_a, steps=3)
    b.load_state_dict(a.state_dict())
    opt_b = SGD(b.parameters(), lr=0.1, mom=0.9)
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))
    train(a, opt_a, steps=3)
    train(b, opt_b, steps=3)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb)
