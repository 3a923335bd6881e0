"""Batched data augmentation on the device: one random affine warp per image, no Python per item.

Small rotations, scalings and shifts are what handwriting varies by; a model that sees them
during training generalises from few digits. The warp is one `affine_grid` + `grid_sample`
call for the whole batch.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from .callback import Callback


def random_affine(
    x: torch.Tensor,
    generator: torch.Generator,
    max_shift: float = 2.0,
    max_rotate: float = 10.0,
    max_scale: float = 0.1,
) -> torch.Tensor:
    """Warp each image of (N, 28, 28) or (N, 1, 28, 28) by its own random affine transform.

    max_shift in pixels, max_rotate in degrees, max_scale as a fraction (0.1 = 90%..110%).
    Background (0 after normalisation is not 0, so pad with each image's minimum) fills the edges.
    """
    shape = x.shape
    images = x.reshape(len(x), 1, shape[-2], shape[-1])
    n, device = len(images), images.device

    def uniform(limit: float) -> torch.Tensor:
        return (torch.rand(n, generator=generator, device=device) * 2 - 1) * limit

    angle = uniform(math.radians(max_rotate))
    scale = 1 + uniform(max_scale)
    # affine_grid works in [-1, 1] coordinates: a shift of one pixel is 2 / width
    tx, ty = uniform(max_shift) * 2 / shape[-1], uniform(max_shift) * 2 / shape[-2]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)  # (N, 2, 3)
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    background = images.amin(dim=(1, 2, 3), keepdim=True)
    warped = F.grid_sample(images - background, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return (warped + background).reshape(shape)


class SeededCB(Callback):
    """A callback that draws at random from its own generator on the model's device, seeded at every fit,
    whose state a checkpoint keeps (so a resumed fit draws what the uninterrupted one would)."""

    seed = 0

    def before_fit(self) -> None:
        self.generator = torch.Generator(device=self.learn.device).manual_seed(self.seed)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


class RandomAffineCB(SeededCB):
    """Augment every training batch with `random_affine`; validation batches are untouched."""

    order = -1

    def __init__(self, seed: int = 0, max_shift: float = 2.0, max_rotate: float = 10.0, max_scale: float = 0.1) -> None:
        self.seed, self.max_shift, self.max_rotate, self.max_scale = seed, max_shift, max_rotate, max_scale

    def before_batch(self) -> None:
        if self.learn.training:
            xb, *rest = self.learn.batch
            self.learn.batch = (
                random_affine(xb, self.generator, self.max_shift, self.max_rotate, self.max_scale),
                *rest,
            )


def thicker(x: torch.Tensor, chosen: torch.Tensor, wide: torch.Tensor) -> torch.Tensor:
    """(N, 28, 28) or (N, 1, 28, 28) normalised images, the `chosen` ones (N,) bool drawn with a thicker pen:
    a 3x3 maximum where `wide` (N,) bool, else 2x2 (ink is the bright side, after normalisation too).
    Only the chosen images are pooled (a fifth of a batch: pooling them all cost 8% of a CNN step)."""
    shape = x.shape
    picked = chosen.nonzero().squeeze(1)
    if not len(picked):
        return x
    images = x.reshape(len(x), 1, shape[-2], shape[-1])
    some = images[picked]
    three = F.max_pool2d(some, 3, stride=1, padding=1)
    two = F.max_pool2d(F.pad(some, (0, 1, 0, 1), value=float(some.min())), 2, stride=1)
    out = images.clone()
    out[picked] = torch.where(wide[picked, None, None, None], three, two)
    return out.reshape(shape)


class ThickerPenCB(SeededCB):
    """A `share` of every training batch's digits drawn with a thicker pen (`thicker`): people's pens and
    photos thicken strokes that MNIST's are thin, and a model that never saw one takes it for no digit."""

    order = -3  # before the marks join the batch (OutlierExposureCB, -2): only digits are thickened

    def __init__(self, share: float, seed: int = 0) -> None:
        self.share, self.seed = share, seed

    def before_batch(self) -> None:
        if self.learn.training:
            xb, *rest = self.learn.batch
            draws = torch.rand(2, len(xb), generator=self.generator, device=xb.device)
            self.learn.batch = (thicker(xb, draws[0] < self.share, draws[1] < 0.5), *rest)
