"""Batchnorm statistics measured with the weights they are used with ("precise BN", Wu & Johnson 2021).

During training, batchnorm keeps a running average of each batch's mean and variance; after a
short, fast-moving fit (one epoch at a high learning rate, as the book's resnet18) that average
still remembers weights that are gone, and the validation accuracy suffers for it: 0.53 to 0.93
on the offline mirror's 3s and 7s after the book's one epoch, the same network 0.97 once its
statistics are measured again. Before each validation pass, this callback re-measures them over
up to `n_batches` training batches (forward passes only, no gradients, a plain average).
"""

from __future__ import annotations

import torch
from torch import nn

from .callback import Callback

BATCHES = 50  # 3,200 images at the default 64 a batch: a small fraction of an epoch


class PreciseBNCB(Callback):
    order = 5  # after the device and layout callbacks have set the model up
    in_search = False  # lr_find skips validation anyway

    def __init__(self, n_batches: int = BATCHES) -> None:
        self.n_batches = n_batches

    def before_epoch(self) -> None:
        if self.learn.training:
            return
        model = self.learn.model
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
        if not norms:
            return
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # None: a cumulative average over the batches below
        model.train()
        with torch.no_grad():
            for i, batch in enumerate(self.learn.dls.train):
                if i >= self.n_batches:
                    break
                model(batch[0])
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.eval()
