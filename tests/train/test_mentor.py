"""The mentor: each of chapter 4's common mistakes, made here as a learner would make it, gets its
cause and fix in words (MentorError, MentorWarning, or a note under PyTorch's own error); the
book's own way of doing each thing gets nothing (tests/test_book_all.py runs the book's cells with
the mentor's warnings as errors)."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from digitlab.train.dataloader import DataLoader, DataLoaders
from digitlab.train.learner import Learner
from digitlab.train.losses import batch_accuracy
from digitlab.train.mentor import CATALOGUE, MentorError, MentorWarning, hint_for, install_notebook_hints


def book_mnist_loss(predictions, targets):  # the book's own, as a learner types it
    predictions = predictions.sigmoid()
    return torch.where(targets == 1, 1 - predictions, predictions).mean()


def data(n: int = 32, classes: int = 2, flat: bool = True):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 28, 28, generator=g)
    x = x.view(n, 28 * 28) if flat else x
    y = torch.randint(0, classes, (n, 1), generator=g)
    return x, y


def loaders(train, valid=None):
    valid = valid if valid is not None else tuple(t.clone() for t in train)
    return DataLoaders(DataLoader(train, batch_size=16), DataLoader(valid, batch_size=16))


def fit(model, train, loss_func=book_mnist_loss, metrics=(), lr=0.1, valid=None, **kwargs):
    torch.manual_seed(0)
    learn = Learner(loaders(train, valid), model, loss_func, lr=lr, metrics=metrics, default_cbs=True, **kwargs)
    learn.fit(1)


def says(key: str, error: BaseException) -> bool:
    return CATALOGUE[key].hint in str(error) + "".join(getattr(error, "__notes__", []))


class NoZeroGrad:
    """The book's BasicOptim with the zero_grad line forgotten."""

    def __init__(self, params, lr):
        self.params, self.lr = list(params), lr
        self.param_groups = [{"lr": lr}]

    def step(self):
        for p in self.params:
            p.data -= p.grad.data * self.lr

    def zero_grad(self):
        pass


def step_loss(predictions, targets):  # accuracy used as the loss
    return ((predictions > 0).float() == targets).float().mean()


def frozen_linear():
    model = nn.Linear(784, 1)
    model.requires_grad_(False)
    return model


def uint8_data():
    x, y = data()
    return (x * 255).to(torch.uint8), y


def raised(key: str, make: Callable[[], object], kind: type[BaseException] = Exception) -> None:
    with pytest.raises(kind) as info:
        make()
    assert says(key, info.value), f"{key}: {info.value!r} {getattr(info.value, '__notes__', '')}"


def warned(key: str, make: Callable[[], object]) -> None:
    with pytest.warns(MentorWarning) as record:
        make()
    assert any(CATALOGUE[key].hint in str(w.message) for w in record), [str(w.message) for w in record]


def in_place_leaf():
    w = torch.randn(784, 1).requires_grad_()
    w[0] *= 1.0001


def backward_twice():
    w = torch.randn(3).requires_grad_()
    loss = (w**2).sum()
    loss.backward()
    loss.backward()


def only_hint(make: Callable[[], object]) -> Callable[[], object]:
    """PyTorch's error outside a fit (the learner's own cell): the hint is what hint_for gives it."""

    def run() -> None:
        try:
            make()
        except Exception as error:
            error.add_note(hint_for(error) or "")
            raise

    return run


x2, y2 = data()
x10, y10 = data(classes=10)
MISTAKES: dict[str, Callable[[], None]] = {
    "uint8": lambda: raised("uint8", lambda: fit(nn.Linear(784, 1), uint8_data())),
    "0-255": lambda: warned("0-255", lambda: fit(nn.Linear(784, 1), ((x2 * 255).round(), y2))),
    "flatten": lambda: raised("flatten", lambda: fit(nn.Linear(784, 1), data(flat=False))),
    "binary-multiclass": lambda: raised("binary-multiclass", lambda: fit(nn.Linear(784, 1), (x10, y10)), MentorError),
    "broadcast": lambda: raised("broadcast", lambda: fit(nn.Linear(784, 1), (x2, y2.squeeze(1))), MentorError),
    "double-sigmoid-loss": lambda: warned(
        "double-sigmoid-loss", lambda: fit(nn.Sequential(nn.Linear(784, 1), nn.Sigmoid()), (x2, y2))
    ),
    "double-sigmoid-metric": lambda: warned(
        "double-sigmoid-metric",
        lambda: fit(
            nn.Sequential(nn.Linear(784, 1), nn.Sigmoid()), (x2, y2), loss_func=F.mse_loss, metrics=batch_accuracy
        ),
    ),
    "softmax-ce": lambda: warned(
        "softmax-ce",
        lambda: fit(nn.Sequential(nn.Linear(784, 2), nn.Softmax(1)), (x2, y2.squeeze(1)), loss_func=F.cross_entropy),
    ),
    "no-grad": lambda: raised("no-grad", lambda: fit(frozen_linear(), (x2, y2)), MentorError),
    "step-loss": lambda: raised(
        "step-loss", lambda: fit(nn.Linear(784, 1), (x2, y2), loss_func=step_loss), MentorError
    ),
    "zero-grad": lambda: warned("zero-grad", lambda: fit(nn.Linear(784, 1), (x2, y2), opt_func=NoZeroGrad)),
    "in-place-leaf": lambda: raised("in-place-leaf", only_hint(in_place_leaf), RuntimeError),
    "backward-twice": lambda: raised("backward-twice", only_hint(backward_twice), RuntimeError),
    "grad-none": lambda: raised("grad-none", only_hint(lambda: torch.randn(3).grad.data), AttributeError),
    "ce-target-shape": lambda: raised(
        "ce-target-shape", lambda: fit(nn.Linear(784, 2), (x2, y2), loss_func=F.cross_entropy)
    ),
    "ce-target-dtype": lambda: raised(
        "ce-target-dtype", lambda: fit(nn.Linear(784, 2), (x2, y2.squeeze(1).float()), loss_func=F.cross_entropy)
    ),
    "too-few-outputs": lambda: raised(
        "too-few-outputs", lambda: fit(nn.Linear(784, 2), (x10, y10.squeeze(1)), loss_func=F.cross_entropy), IndexError
    ),
    "diverged": lambda: raised(
        "diverged", lambda: fit(nn.Linear(784, 1), (x2, y2.float()), loss_func=F.mse_loss, lr=1e30), MentorError
    ),
    "valid-is-train": lambda: warned("valid-is-train", lambda: fit(nn.Linear(784, 1), (x2, y2), valid=(x2, y2))),
    "fit-one-cycle": lambda: raised(
        "fit-one-cycle",
        only_hint(lambda: Learner(loaders((x2, y2)), nn.Linear(784, 1), book_mnist_loss).fit_one_cycle(1)),
        AttributeError,
    ),
}


def test_every_mistake_in_the_catalogue_is_made_here():
    assert set(MISTAKES) == set(CATALOGUE) and len(CATALOGUE) >= 12


@pytest.mark.parametrize("key", sorted(MISTAKES))
def test_the_mistake_is_named_with_its_fix(key):
    MISTAKES[key]()


def test_the_books_way_gets_no_word_from_the_mentor():
    x, y = data()
    with warnings.catch_warnings():
        warnings.simplefilter("error", MentorWarning)
        fit(nn.Linear(784, 1), (x, y), metrics=batch_accuracy)
        fit(nn.Sequential(nn.Linear(784, 30), nn.ReLU(), nn.Linear(30, 1)), (x, y), metrics=batch_accuracy)
        fit(nn.Linear(784, 10), (x10, y10.squeeze(1)), loss_func=F.cross_entropy)


def test_in_jupyter_the_hint_is_printed_under_the_traceback(capsys):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        assert install_notebook_hints()
        shell.run_cell("import torch\nw = torch.randn(784, 1).requires_grad_()\nw[0] *= 1.0001")
        shown = capsys.readouterr().out
        assert "leaf Variable" in shown and "digitlab: " + CATALOGUE["in-place-leaf"].hint[:40] in shown
        shell.run_cell("1/0")  # an error the mentor knows nothing about: the traceback alone
        shown = capsys.readouterr().out
        assert "ZeroDivisionError" in shown and "digitlab: " not in shown
    finally:
        shell.set_custom_exc((), None)
        InteractiveShell.clear_instance()
