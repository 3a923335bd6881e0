"""PreciseBNCB: before validation, batchnorm's statistics are those of the current weights on the
training data, not a running average that still remembers the first batches."""

from __future__ import annotations

import torch
from torch import nn

from digitlab.train.dataloader import DataLoader, DataLoaders
from digitlab.train.learner import Learner
from digitlab.train.precise_bn import PreciseBNCB


def fit_one_epoch(cbs):
    torch.manual_seed(0)
    x = torch.randn(64, 3) + 5  # every feature's mean is near 5
    y = torch.zeros(64, 3)
    dls = DataLoaders(DataLoader((x, y), batch_size=16), DataLoader((x, y), batch_size=16))
    norm = nn.BatchNorm1d(3)
    learn = Learner(dls, nn.Sequential(norm), loss_func=nn.functional.mse_loss, lr=0.0, cbs=cbs, default_cbs=False)
    learn.fit(1)
    return norm, x


def test_the_statistics_are_measured_again_before_validation():
    norm, x = fit_one_epoch([PreciseBNCB()])
    assert torch.allclose(norm.running_mean, x.mean(0), atol=1e-5)  # the plain average over the batches
    assert norm.momentum == 0.1 and not norm.training  # put back as it was, for validation


def test_without_it_the_running_average_lags():
    norm, x = fit_one_epoch([])
    assert (norm.running_mean < x.mean(0) - 1).all()  # 4 batches at momentum 0.1 from 0: far from 5
