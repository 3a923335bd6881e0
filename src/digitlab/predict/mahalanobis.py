"""The "not a digit" signal of the features: how far an image's features lie from every class of the training digits.

The features are the inputs of the model's last linear layer (the CNN's pooled channels, simple_net's
hidden units, the linear model's pixels). `fit_stats` keeps the training digits' class means and one
shared covariance (Lee et al., 2018); `ClassStats.distances` is the squared Mahalanobis distance to the
nearest class mean. `abstain.safetensors` beside the model holds them (`save_stats`, `load_stats`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..artifacts.card import ModelCard, Normalization
from ..artifacts.inference import model_outputs
from ..artifacts.serialization import beside, load_tensors, state_sha256, write_tensors
from ..errors import DigitlabError

STATS = "abstain.safetensors"  # beside the model: the class means and the precision of the features
CHUNK = 256  # images per distance computation: (CHUNK, C, D) float64 stays a few MB for the linear model
FULL_COVARIANCE = 256  # features up to this many get a full covariance (the CNN's 64); more (the linear
# model's 784 pixels) a diagonal one: a 784x784 matrix would weigh 2.4 MB beside 3 KB of weights


@dataclass(frozen=True)
class ClassStats:
    """The training digits' features: class means (C, D) and the shared covariance's inverse, (D, D) or its
    diagonal (D,) (over FULL_COVARIANCE features), float64 in memory and float32 on disk."""

    means: torch.Tensor
    precision: torch.Tensor

    def distances(self, features: torch.Tensor) -> torch.Tensor:
        """(N, D) features -> (N,) squared Mahalanobis distance to the nearest class mean, divided by D."""
        out, features = [], features.double()
        for start in range(0, len(features), CHUNK):
            part = features[start : start + CHUNK]
            diff = part[:, None, :] - self.means[None]  # (n, C, D)
            weighted = diff * self.precision if self.precision.dim() == 1 else diff @ self.precision
            out.append((weighted * diff).sum(-1).min(1).values)
        return torch.cat(out) / self.means.shape[1] if out else torch.empty(0, dtype=torch.float64)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"means": self.means.float(), "precision": self.precision.float()}


def fit_stats(features: torch.Tensor, labels: torch.Tensor, n_classes: int) -> ClassStats:
    """Class means and a shrunk shared covariance (toward its mean variance: D / N of it, 1% at least),
    so that a few hundred digits with many features still give an invertible matrix; its diagonal
    only, over FULL_COVARIANCE features."""
    f = features.double()
    n, d = f.shape
    means = torch.stack([f[labels == c].mean(0) if (labels == c).any() else f.mean(0) for c in range(n_classes)])
    centred = f - means[labels]
    shrink = min(1.0, max(0.01, d / max(n, 1)))
    if d > FULL_COVARIANCE:
        var = (centred**2).sum(0) / max(n, 1)  # (D,)
        level = float(var.mean()) or 1.0
        return _as_saved(means, 1 / ((1 - shrink) * var + shrink * level))
    cov = centred.T @ centred / max(n, 1)  # (D, D)
    level = float(cov.diagonal().mean()) or 1.0
    cov = (1 - shrink) * cov + shrink * level * torch.eye(d, dtype=torch.float64)
    return _as_saved(means, torch.linalg.inv(cov))


def _as_saved(means: torch.Tensor, precision: torch.Tensor) -> ClassStats:
    """Rounded to float32 as they are saved: thresholds calibrated on these hold for the loaded copy."""
    return ClassStats(means.float().double(), precision.float().double())


def last_linear(model: nn.Module) -> nn.Linear:
    """The model's output layer (digitlab's models register it last)."""
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise DigitlabError(f"{type(model).__name__} has no linear output layer to take features from")
    return layers[-1]


@contextlib.contextmanager
def feature_tap(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collects the inputs of the model's last linear layer, (n, D) float64 on the CPU per forward pass."""
    collected: list[torch.Tensor] = []

    def keep(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        collected.append(args[0].detach().flatten(1).double().cpu())

    handle = last_linear(model).register_forward_pre_hook(keep)
    try:
        yield collected
    finally:
        handle.remove()


def outputs_and_features(
    model: nn.Module, images: torch.Tensor, norm: Normalization, device: str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 28, 28) uint8 -> raw outputs (N, n_out) and features (N, D), in one pass without TTA."""
    with feature_tap(model) as collected:
        outputs = model_outputs(model, images, norm, device)
    d = last_linear(model).in_features
    return outputs, torch.cat(collected) if collected else torch.empty(0, d, dtype=torch.float64)


def save_stats(model_dir: Path, stats: ClassStats) -> str:
    """Write abstain.safetensors beside the model; returns its sha256 (for the card)."""
    tensors = stats.tensors()
    write_tensors(beside(model_dir, STATS), tensors)
    return state_sha256(tensors)


def load_stats(model_dir: Path, card: ModelCard) -> ClassStats | None:
    """The class statistics saved with a model whose card calls for them; None when the card does not,
    or when the file is absent (a model.json copied without it: then there is no Mahalanobis check)."""
    calibration = card.abstain
    if calibration is None or calibration.max_distance is None:
        return None
    path = beside(model_dir, STATS)
    loaded = load_tensors(path, "abstention statistics")
    if loaded is None:
        return None
    tensors = loaded[0]
    means, precision = tensors.get("means"), tensors.get("precision")
    if (
        means is None
        or precision is None
        or means.dim() != 2
        or means.shape[0] != len(card.classes)
        or tuple(precision.shape) not in ((means.shape[1], means.shape[1]), (means.shape[1],))
        or not all(t.is_floating_point() and bool(torch.isfinite(t).all()) for t in (means, precision))
    ):
        raise DigitlabError(f"{path}: corrupt abstention statistics (want means (C, D) and precision (D, D) or (D,))")
    if calibration.stats_sha256 is not None and state_sha256(tensors) != calibration.stats_sha256:
        raise DigitlabError(f"{path}: not the abstention statistics the model's card describes (sha256 differs)")
    return ClassStats(means.double(), precision.double())
