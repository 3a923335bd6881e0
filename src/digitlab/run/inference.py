"""From uint8 digits to a trained model's outputs: the same preprocessing as training.

The functions a `digitlab.run.predictor.Predictor` is made of; nothing here knows the training loop.
"""

from __future__ import annotations

import torch
from torch import nn

from .card import Normalization
from .shifts import tta_outputs

CHUNK = 512  # images per forward pass: bounds memory (a CNN holds ~50 KB of activations per image)


def to_inputs(images: torch.Tensor, norm: Normalization, device: str | torch.device = "cpu") -> torch.Tensor:
    """(N, 28, 28) uint8 -> (N, 28, 28) float32 on device, scaled to [0, 1] and standardised."""
    x = images.to(device).float() * norm["scale"]
    return (x - norm["mean"]) / norm["std"] if (norm["mean"], norm["std"]) != (0.0, 1.0) else x


def labels_from_outputs(outputs: torch.Tensor, binary: bool) -> torch.Tensor:
    """(N, 1) logits of "first class" or (N, C) logits -> (N,) int64 class indices."""
    if binary:
        return (outputs[:, 0] <= 0).long()  # sigmoid > 0.5 means the first class
    return outputs.argmax(1)


def probabilities(outputs: torch.Tensor, binary: bool) -> torch.Tensor:
    """(N, C) class probabilities; binary models give [p(first), 1 - p(first)]."""
    if binary:
        first = torch.sigmoid(outputs[:, 0])
        return torch.stack([first, 1 - first], 1)
    return torch.softmax(outputs, 1)


@torch.no_grad()
def model_outputs(
    model: nn.Module,
    images: torch.Tensor,
    norm: Normalization,
    device: str | torch.device = "cpu",
    tta: bool = False,
) -> torch.Tensor:
    """Raw outputs (N, n_out) for (N, 28, 28) uint8 images, in eval mode, chunk by chunk.

    tta: average the outputs over the image and its one-pixel shifts (see `digitlab.run.shifts`).
    """
    forward = (lambda x: tta_outputs(model, x)) if tta else model
    was_training = model.training
    if was_training:  # eval() walks every submodule: skip it for a model already in eval mode (serving)
        model.eval()
    try:
        # One copy to the device (uint8, 784 bytes per image) and one back: on a GPU the chunks then
        # queue without the host waiting for any of them.
        images = images.to(device)
        parts = [forward(to_inputs(images[i : i + CHUNK], norm, device)).float() for i in range(0, len(images), CHUNK)]
    finally:
        if was_training:
            model.train()
    return torch.cat(parts).cpu() if parts else torch.empty(0, 1)
