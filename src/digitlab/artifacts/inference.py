"""From uint8 digits to a trained model's outputs: the same preprocessing as training.

The functions a `digitlab.predict.predictor.Predictor` is made of; nothing here knows the training loop.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..errors import BrokenModelError
from .card import Normalization
from .shifts import tta_outputs

CHUNK = 512  # images per forward pass: bounds memory (a CNN holds ~50 KB of activations per image)

# Called before each chunk's forward pass: the CLI adds a core.threads.LoadFollower, so long inference
# follows the machine's load (one clock read per chunk when nothing is due)
BETWEEN_CHUNKS: list[Callable[[], None]] = []


def _chunk(i: int) -> int:
    for hook in BETWEEN_CHUNKS:
        hook()
    return i


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

    tta: average the outputs over the image and its one-pixel shifts (see `digitlab.artifacts.shifts`).
    """
    forward = (lambda x: tta_outputs(model, x)) if tta else model
    was_training = model.training
    if was_training:  # eval() walks every submodule: skip it for a model already in eval mode (serving)
        model.eval()
    try:
        # One copy to the device (uint8, 784 bytes per image) and one back: on a GPU the chunks then
        # queue without the host waiting for any of them.
        images = images.to(device)
        starts = (_chunk(i) for i in range(0, len(images), CHUNK))
        parts = [forward(to_inputs(images[i : i + CHUNK], norm, device)).float() for i in starts]
    finally:
        if was_training:
            model.train()
    outputs = torch.cat(parts).cpu() if parts else torch.empty(0, 1)
    if not bool(torch.isfinite(outputs).all()):  # on the host already: no extra wait for the device
        raise BrokenModelError(BROKEN)
    return outputs


BROKEN = (
    "the model's outputs are not numbers (NaN or infinite): its weights or its card's normalisation "
    "are broken; train it again"
)


def probe_digits() -> torch.Tensor:
    """(4, 28, 28) uint8: blank, full, a vertical stroke and a checkerboard, what a working model
    answers with numbers and a broken one (NaN weights, a std of 1e-300) does not."""
    digits = torch.zeros(4, 28, 28, dtype=torch.uint8)
    digits[1] = 255
    digits[2, 4:24, 12:16] = 255
    digits[3] = ((torch.arange(28)[:, None] + torch.arange(28)[None, :]) % 2 * 255).to(torch.uint8)
    return digits


def check_answers(model: nn.Module, norm: Normalization, what: str) -> None:
    """A model that answers NaN or infinity on the probe digits is a one-line BrokenModelError naming `what`."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        model_outputs(model, probe_digits(), norm, device)
    except BrokenModelError:
        raise BrokenModelError(f"{what}: {BROKEN}") from None
