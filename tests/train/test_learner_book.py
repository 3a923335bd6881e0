"""The Learner as the book calls it: one metric, plain nn modules, int targets, default callbacks."""

from __future__ import annotations

import io
import sys
import types

import pytest
import torch
from torch import nn

from digitlab.errors import DigitlabError
from digitlab.train.callbacks import ProgressCB, RecorderCB
from digitlab.train.dataloader import DataLoader, DataLoaders
from digitlab.train.learner import Learner
from digitlab.train.losses import batch_accuracy, mnist_loss
from digitlab.train.optim import SGD


@pytest.fixture
def dls(digits_factory) -> DataLoaders:
    """The book's dset: a list of (784 floats, (1,) int) tuples, 3 -> 1 and 7 -> 0."""
    images, labels = digits_factory(20, (3, 7), 0)
    x = torch.as_tensor(images).float().view(-1, 784) / 255
    y = (torch.as_tensor(labels) == 3).long().unsqueeze(1)
    dset = list(zip(x, y))
    return DataLoaders(DataLoader(dset, batch_size=8, shuffle=True, seed=0), DataLoader(dset, batch_size=16))


def test_the_books_learner_call(dls):
    learn = Learner(dls, nn.Linear(28 * 28, 1), opt_func=SGD, loss_func=mnist_loss, metrics=batch_accuracy)
    assert learn.metrics == [batch_accuracy]
    assert isinstance(learn.recorder, RecorderCB)  # fastai's default recorder
    learn.fit(4, lr=1.0)
    _train_loss, valid_loss, accuracy = learn.recorder.values[-1]
    assert valid_loss < learn.recorder.values[0][1] and accuracy == 1.0
    learn.fit(2, 0.1)  # the book's positional lr
    assert learn.lr == 0.1 and len(learn.recorder.values) == 2
    assert repr(learn).startswith(
        "Learner(Linear, loss_func=mnist_loss, opt_func=SGD, lr=0.1, metrics=[batch_accuracy]"
    )


def test_defaults_are_added_once_and_can_be_left_out(dls, monkeypatch):
    own = RecorderCB()
    learn = Learner(dls, nn.Linear(784, 1), mnist_loss, cbs=[own])
    assert learn.recorder is own and sum(isinstance(cb, RecorderCB) for cb in learn.cbs) == 1
    bare = Learner(dls, nn.Linear(784, 1), mnist_loss, default_cbs=False)
    assert bare.cbs == [] and not hasattr(bare, "recorder")
    # on a pipe (as here) no table; on a terminal a text table on stdout
    assert not any(isinstance(cb, ProgressCB) for cb in learn.cbs)
    monkeypatch.setattr(sys, "stdout", types.SimpleNamespace(isatty=lambda: True, write=None, flush=None))
    assert ProgressCB.auto().file is sys.stdout


class FakeHandle:
    """What IPython.display.display(..., display_id=True) returns: updates replace the output."""

    def __init__(self, shown: list[str]) -> None:
        self.shown = shown

    def update(self, obj) -> None:
        self.shown.append(obj.data)


def test_jupyter_shows_one_table_that_updates(dls, monkeypatch):
    import IPython
    import IPython.display

    shown: list[str] = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: types.SimpleNamespace(kernel=object()))
    monkeypatch.setattr(
        IPython.display, "display", lambda obj, display_id=False: (shown.append(obj.data), FakeHandle(shown))[1]
    )
    progress = ProgressCB.auto()
    assert progress.html
    learn = Learner(dls, nn.Linear(784, 1), mnist_loss, metrics=batch_accuracy)
    assert learn.progress.html  # the default in a kernel
    learn.fit(3)
    final = shown[-1]
    assert final.count("<tr>") == 1 + 3 and "<th>batch_accuracy</th>" in final
    assert f"{learn.recorder.history[-1]['valid_loss']:.6g}" in final
    assert "epoch" not in final.split("</table>")[1]  # the status line is gone when it is done


def test_text_table_on_any_file(dls):
    out = io.StringIO()
    learn = Learner(dls, nn.Linear(784, 1), mnist_loss, metrics=[batch_accuracy], cbs=[ProgressCB(file=out)])
    learn.fit(2)
    assert len(out.getvalue().splitlines()) == 3


def test_ten_outputs_with_mnist_loss_say_cross_entropy(dls):
    learn = Learner(dls, nn.Linear(784, 10), mnist_loss, metrics=batch_accuracy)
    with pytest.raises(Exception, match="use cross_entropy"):
        learn.fit(1)


def test_progress_without_a_recorder_says_so(dls):
    learn = Learner(dls, nn.Linear(784, 1), mnist_loss, cbs=[ProgressCB(file=io.StringIO())], default_cbs=False)
    with pytest.raises(DigitlabError, match="add RecorderCB"):
        learn.fit(1)
