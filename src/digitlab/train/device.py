"""Which device a run trains on, and so which recipe's defaults it takes."""

from __future__ import annotations

import torch

from ..errors import DigitlabError


def resolve_device(requested: str) -> str:
    """'auto' -> cuda, else mps, else cpu; an explicit device that is not there is an error."""
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if requested == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if (requested.startswith("cuda") and not cuda) or (requested == "mps" and not mps):
        raise DigitlabError(f"device {requested!r} is not available here (try --device auto or cpu)")
    return requested


def recipe_for(device: str) -> str:
    """Which DEVICE_RECIPES entry a run on `device` takes: "cuda" on a CUDA device, else "cpu"."""
    return "cuda" if resolve_device(device).startswith("cuda") else "cpu"
