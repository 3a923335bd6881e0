"""Saying "this does not look like a digit" or "not sure: 4 or 9?" instead of a confident guess.

Two checks, each calibrated at training time on the held-out digits to reject `TARGET` of them:
- **not a digit**: the Mahalanobis distance of the image's features (the inputs of the model's last
  linear layer: the CNN's pooled channels, simple_net's hidden units, the linear model's pixels) to
  the nearest class mean of the training digits, with one shared covariance (Lee et al., 2018).
  Measured against the max probability, the margin, the max logit, the energy, the distance to the
  ideal digits and the ink (bench/bench_abstain.py, BENCHMARKS.md), it rejects by far the most
  clothing, noise and several-digits images at the same false rejections of real digits.
- **not sure**: the gap between the two likeliest classes' probabilities (the margin) is small.
A model saved without a calibration (before digitlab abstained, or validated on fewer than
MIN_CALIBRATION digits) has no "not a digit" check and is "not sure" when its margin is under
DEFAULT_MIN_MARGIN.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..data.digits import Digits
from ..errors import DigitlabError
from .card import Abstention, ModelCard, Normalization
from .inference import model_outputs, probabilities
from .serialization import _beside, _load_tensors, _save_tensors, state_sha256

STATS = "abstain.safetensors"  # beside the model: the class means and the precision of the features
TARGET = 0.01  # share of held-out digits each threshold rejects
DEFAULT_MIN_MARGIN = 0.1  # a model without a calibration: not sure when the two likeliest are this close
MIN_CALIBRATION = 200  # held-out digits needed to estimate a 1% quantile at all; fewer: the defaults
NOT_A_DIGIT = "this does not look like a digit"
CHUNK = 256  # images per distance computation: (CHUNK, C, D) float64 stays a few MB for the linear model
FULL_COVARIANCE = 256  # features up to this many get a full covariance (the CNN's 64); more (the linear
# model's 784 pixels) a diagonal one: a 784x784 matrix would weigh 2.4 MB beside 3 KB of weights


def not_sure(first: str, second: str) -> str:
    return f"not sure: {first} or {second}?"


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


def margins(probs: torch.Tensor) -> torch.Tensor:
    """(N, C) probabilities -> (N,) the likeliest minus the second likeliest."""
    top = probs.double().topk(2, dim=1).values
    return top[:, 0] - top[:, 1]


@dataclass(frozen=True)
class Abstainer:
    """The thresholds (the card's Abstention) and, for the "not a digit" check, the class statistics."""

    calibration: Abstention
    stats: ClassStats | None = None

    @classmethod
    def of(cls, card: ModelCard, stats: ClassStats | None = None) -> Abstainer:
        calibration = card.abstain or Abstention(min_margin=DEFAULT_MIN_MARGIN)
        return cls(calibration, stats if calibration.max_distance is not None else None)

    @property
    def checks_digits(self) -> bool:
        return self.stats is not None and self.calibration.max_distance is not None

    def reasons(
        self, probs: torch.Tensor, classes: tuple[str, ...], features: torch.Tensor | None = None
    ) -> list[str | None]:
        """Per image: None (answer), NOT_A_DIGIT, or "not sure: a or b?" (the two likeliest)."""
        far = torch.zeros(len(probs), dtype=torch.bool)
        if self.stats is not None and self.calibration.max_distance is not None and features is not None:
            far = self.stats.distances(features) > self.calibration.max_distance
        close = margins(probs) < self.calibration.min_margin
        order = probs.topk(2, dim=1).indices.tolist()
        return [
            NOT_A_DIGIT if f else not_sure(classes[o[0]], classes[o[1]]) if c else None
            for f, c, o in zip(far.tolist(), close.tolist(), order)
        ]


def calibrate(
    probs: torch.Tensor, distances: torch.Tensor | None, stats_sha256: str | None, target: float = TARGET
) -> Abstention:
    """Thresholds that reject `target` of held-out digits each: (N, C) probabilities, (N,) distances.
    Under MIN_CALIBRATION digits: the default margin and no distance check (their rates still measured)."""
    margin = margins(probs)
    enough = len(margin) >= MIN_CALIBRATION
    min_margin = float(torch.quantile(margin, target)) if enough else DEFAULT_MIN_MARGIN
    far = torch.zeros(len(margin), dtype=torch.bool)
    max_distance = None
    if distances is not None and enough:
        max_distance = float(torch.quantile(distances, 1 - target))
        far = distances > max_distance
    close = margin < min_margin
    n = max(len(margin), 1)
    return Abstention(
        min_margin=round(min_margin, 6),
        max_distance=None if max_distance is None else round(max_distance, 6),
        target=target if enough else None,
        n_valid=len(margin),
        false_reject=round(float((far | close).sum()) / n, 6),
        not_a_digit=round(float(far.sum()) / n, 6),
        not_sure=round(float((close & ~far).sum()) / n, 6),
        stats_sha256=stats_sha256 if max_distance is not None else None,
    )


def rejection_report(reasons: list[str | None], correct: torch.Tensor) -> dict[str, float | int | None]:
    """What abstaining costs on labelled digits: the false-reject rate and the accuracy of the answers given."""
    rejected = torch.tensor([r is not None for r in reasons], dtype=torch.bool)
    answered = ~rejected
    n = max(len(reasons), 1)
    return {
        "false_reject_rate": round(float(rejected.sum()) / n, 6),
        "not_a_digit": sum(r == NOT_A_DIGIT for r in reasons),
        "not_sure": sum(r is not None and r != NOT_A_DIGIT for r in reasons),
        "accuracy_answered": round(float(correct[answered].double().mean()), 6) if answered.any() else None,
    }


def calibrate_model(
    model: nn.Module, card: ModelCard, train: Digits, valid: Digits, out: Path, device: str = "cpu"
) -> Abstention:
    """At the end of training: the class statistics of the training digits (saved beside the model
    in `out`) and the thresholds that reject TARGET of the validation digits each."""
    _, train_features = outputs_and_features(model, train.images, card.normalization, device)
    stats = fit_stats(train_features, train.labels, len(card.classes))
    outputs, features = outputs_and_features(model, valid.images, card.normalization, device)
    sha = save_stats(out, stats)
    return calibrate(probabilities(outputs.double(), card.binary), stats.distances(features), sha)


def save_stats(model_dir: Path, stats: ClassStats) -> str:
    """Write abstain.safetensors beside the model; returns its sha256 (for the card)."""
    tensors = stats.tensors()
    _save_tensors(_beside(model_dir, STATS), tensors)
    return state_sha256(tensors)


def load_stats(model_dir: Path, card: ModelCard) -> ClassStats | None:
    """The class statistics saved with a model whose card calls for them; None when the card does not,
    or when the file is absent (a model.json copied without it: then there is no "not a digit" check)."""
    calibration = card.abstain
    if calibration is None or calibration.max_distance is None:
        return None
    path = _beside(model_dir, STATS)
    loaded = _load_tensors(path, "abstention statistics")
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
