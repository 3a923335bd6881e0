"""lr_find: rising rates, stops on divergence, leaves the model alone, suggests a sane lr."""

from __future__ import annotations

import torch

from digitlab.models import build_model
from digitlab.train.callbacks import DivergenceGuardCB, RecorderCB
from digitlab.train.dataloader import DataLoaders
from digitlab.train.learner import Learner
from digitlab.train.losses import cross_entropy
from digitlab.train.lr_finder import lr_find


def _learner(digits_factory, noisy_labels: bool = False) -> Learner:
    images, labels = digits_factory(40, classes=(0, 1, 2))
    x = torch.from_numpy(images).float() / 255
    y = torch.from_numpy(labels).long()
    if noisy_labels:  # not separable: large rates must blow the loss up rather than drive it to 0
        y = torch.randint(0, 3, y.shape, generator=torch.Generator().manual_seed(0))
    dls = DataLoaders.from_tensors(x, y, x, y, batch_size=16, seed=0)
    torch.manual_seed(0)
    return Learner(dls, build_model("linear", 3), cross_entropy, lr=0.1, cbs=[RecorderCB(), DivergenceGuardCB()])


def test_lr_find_spans_rates_and_stops_at_divergence(digits_factory):
    learn = _learner(digits_factory, noisy_labels=True)
    before = {k: v.clone() for k, v in learn.model.state_dict().items()}
    found = lr_find(learn, start=1e-5, end=1e4, num=80)
    assert all(b > a for a, b in zip(found.lrs, found.lrs[1:]))  # rising
    assert len(found.lrs) == len(found.losses) <= 80
    assert found.lrs[0] == 1e-5 and found.lrs[-1] < 1e4  # stopped by the blow-up before the end
    assert all(torch.equal(before[k], v) for k, v in learn.model.state_dict().items())
    learn.fit(1)  # the learner still trains normally afterwards
    assert len(learn.recorder.history) == 1


def test_lr_find_runs_over_several_epochs_when_num_exceeds_batches(digits_factory):
    learn = _learner(digits_factory)  # 120 images / 16 = 8 batches per epoch
    found = lr_find(learn, start=1e-6, end=1e-3, num=30)  # small rates: no divergence, all 30 steps
    assert len(found.lrs) == 30


def test_suggestion_is_where_the_loss_falls_fastest(digits_factory):
    found = lr_find(_learner(digits_factory), start=1e-5, end=1e4, num=80)
    assert 1e-3 < found.suggestion < 10  # separable strokes: the loss falls fastest around 0.01-1
    i = found.lrs.index(found.suggestion)
    assert found.losses[i + 5] < found.losses[i]  # the loss is still falling just after it
