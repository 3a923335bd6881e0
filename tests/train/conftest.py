"""Fixtures shared by the training tests."""

from __future__ import annotations

import pytest
import torch
from torch.overrides import TorchFunctionMode

from digitlab.data.digits import Digits


@pytest.fixture
def make_digits(digits_factory):
    """`make_digits(n_per_class, classes=(3, 7), seed=0)`: synthetic stroke digits as a `Digits` split."""

    def make(n_per_class: int, classes: tuple[int, ...] = (3, 7), seed: int = 0) -> Digits:
        images, labels = digits_factory(n_per_class, classes, seed)
        index = torch.tensor([classes.index(int(label)) for label in labels], dtype=torch.int64)
        return Digits(torch.as_tensor(images), index, tuple(str(c) for c in classes))

    return make


# What brings a tensor's value to the host: on a GPU each is a wait for the device, and inside a CUDA
# graph's capture an error ("operation not permitted when stream is capturing").
HOST_READS = {
    torch.Tensor.item,
    torch.Tensor.tolist,
    torch.Tensor.numpy,
    torch.Tensor.__bool__,
    torch.Tensor.__int__,
    torch.Tensor.__float__,
    torch.Tensor.__index__,
}


class HostReads(TorchFunctionMode):
    """Inside `with HostReads() as reads:`, `reads.seen` lists every host read of a tensor's value, by name."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in HOST_READS:
            self.seen.append(func.__name__)
        return func(*args, **(kwargs or {}))


@pytest.fixture
def host_reads():
    """`with host_reads() as reads: ...`, then `reads.seen`: the host reads made inside (see HostReads)."""
    return HostReads
