"""Saying "this does not look like a digit" or "not sure: 4 or 9?" instead of a confident guess.

Checks calibrated at training time on the held-out digits:
- **not a digit**: either of two distances is too large.
  - the Mahalanobis distance of the image's features to the nearest class of the training digits
    (`digitlab.predict.mahalanobis`). Measured against the max probability, the margin, the energy,
    the ideal digits' distance and the ink (bench/bench_abstain.py, BENCHMARKS.md), it rejects by
    far the most clothing, noise and several-digits images at the same false rejections of real digits;
  - the L1 distance of the 28x28 pixels to the nearest ideal (mean) digit of the training digits (the
    chapter's `mnist_distance`; `ideal_digits.safetensors`). It catches what the features miss: a
    circle with marks inside (a smiley) looks like a 0 to the features but like no digit in pixels.
  The Mahalanobis distance rejects TARGET of the held-out digits, as before the pixel check, and the
  pixel distance PIXEL_TARGET more (its threshold is set on the digits the other accepts), so it only
  adds: on the official test digits 0.14 point more false rejections, smileys 77% rejected instead of
  35%. Sharing TARGET between the two instead let more letters, noise, scribbles and clothing through
  (BENCHMARKS.md, "Not a digit, not sure").
  - for a model trained on photographed digits too (`train --photos`), the energy, the logsumexp of its
    outputs, under a threshold: ENERGY_TARGET more of the held-out digits. It declines letters the
    distances pass; on a model that never saw a photo it also declines photographed digits (their
    energy is low there too), so only such models have it (BENCHMARKS.md, "The energy check").
- **not sure**: the gap between the two likeliest classes' probabilities (the margin) is small; TARGET.
A model saved without a calibration (before digitlab abstained, or validated on fewer than
MIN_CALIBRATION digits) has no "not a digit" check and is "not sure" when its margin is under
DEFAULT_MIN_MARGIN; one saved before the pixel check (no `max_pixel_distance`) has the features' only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..artifacts.card import Abstention, ModelCard
from ..artifacts.inference import probabilities
from ..artifacts.serialization import IDEALS, beside, ideal_digits_sha256, load_ideal_digits
from ..baseline import mnist_distance
from ..data.digits import Digits
from ..errors import DigitlabError
from .mahalanobis import ClassStats, fit_stats, load_stats, outputs_and_features, save_stats

TARGET = 0.01  # share of held-out digits that "not sure" rejects, and that the Mahalanobis distance rejects
PIXEL_TARGET = 0.0025  # share of held-out digits the pixel distance rejects beyond the Mahalanobis distance's
ENERGY_TARGET = 0.0025  # share of held-out digits the energy rejects beyond both distances (models trained on photos)
DEFAULT_MIN_MARGIN = 0.1  # a model without a calibration: not sure when the two likeliest are this close
MIN_CALIBRATION = 200  # held-out digits needed to estimate a 1% quantile at all; fewer: the defaults
NOT_A_DIGIT = "this does not look like a digit"


def not_sure(first: str, second: str) -> str:
    return f"not sure: {first} or {second}?"


def margins(probs: torch.Tensor) -> torch.Tensor:
    """(N, C) probabilities -> (N,) the likeliest minus the second likeliest."""
    top = probs.double().topk(2, dim=1).values
    return top[:, 0] - top[:, 1]


def energies(outputs: torch.Tensor) -> torch.Tensor:
    """(N, C) raw outputs -> (N,) float64 logsumexp: low where no class fits (Liu et al., 2020)."""
    return torch.logsumexp(outputs.double(), 1)


def pixel_distances(images: torch.Tensor, ideals: torch.Tensor) -> torch.Tensor:
    """(N, 28, 28) uint8 images, (C, 28, 28) ideal digits in 0..1 -> (N,) float64 mean absolute pixel
    difference (L1, pixels in 0..1) to the nearest ideal digit."""
    if not len(images):
        return torch.empty(0, dtype=torch.float64)
    return mnist_distance(images.float() / 255, ideals.float()).min(1).values.double()


@dataclass(frozen=True)
class Abstainer:
    """The thresholds (the card's Abstention) and what the "not a digit" checks measure against: the
    class statistics of the features, the (C, 28, 28) ideal digits in 0..1."""

    calibration: Abstention
    stats: ClassStats | None = None
    ideals: torch.Tensor | None = None

    @classmethod
    def of(cls, card: ModelCard, stats: ClassStats | None = None, ideals: torch.Tensor | None = None) -> Abstainer:
        calibration = card.abstain or Abstention(min_margin=DEFAULT_MIN_MARGIN)
        return cls(
            calibration,
            stats if calibration.max_distance is not None else None,
            ideals if calibration.max_pixel_distance is not None else None,
        )

    @property
    def checks_features(self) -> bool:
        """The Mahalanobis check: `reasons` needs the features."""
        return self.stats is not None and self.calibration.max_distance is not None

    @property
    def checks_pixels(self) -> bool:
        return self.ideals is not None and self.calibration.max_pixel_distance is not None

    @property
    def checks_digits(self) -> bool:
        """Any "not a digit" check at all."""
        return self.checks_features or self.checks_pixels

    def far(
        self,
        features: torch.Tensor | None,
        images: torch.Tensor | None,
        n: int,
        outputs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(N,) bool: "not a digit" by either distance or the energy (each only where it is calibrated and given)."""
        far = torch.zeros(n, dtype=torch.bool)
        limit, pixel_limit = self.calibration.max_distance, self.calibration.max_pixel_distance
        if self.stats is not None and limit is not None and features is not None:
            far |= self.stats.distances(features) > limit
        if self.ideals is not None and pixel_limit is not None and images is not None:
            far |= pixel_distances(images, self.ideals) > pixel_limit
        if self.calibration.min_energy is not None and outputs is not None:
            far |= energies(outputs) < self.calibration.min_energy
        return far

    def reasons(
        self,
        probs: torch.Tensor,
        classes: tuple[str, ...],
        features: torch.Tensor | None = None,
        images: torch.Tensor | None = None,
        outputs: torch.Tensor | None = None,
    ) -> list[str | None]:
        """Per image: None (answer), NOT_A_DIGIT, or "not sure: a or b?" (the two likeliest).
        probs (N, C); features (N, D) for the Mahalanobis check; images (N, 28, 28) uint8 for the pixel check;
        outputs (N, C), the raw outputs, for the energy check."""
        far = self.far(features, images, len(probs), outputs)
        close = margins(probs) < self.calibration.min_margin
        order = probs.topk(2, dim=1).indices.tolist()
        return [
            NOT_A_DIGIT if f else not_sure(classes[o[0]], classes[o[1]]) if c else None
            for f, c, o in zip(far.tolist(), close.tolist(), order)
        ]


def _threshold_beyond(scores: torch.Tensor, far: torch.Tensor, extra: float) -> float:
    """The threshold on `scores` above which lie `extra` of all the digits among those `far` does not reject
    yet: the quantile of the others' scores, rounded as the card keeps it."""
    rest = scores[~far]
    if not len(rest):
        return round(float(scores.max()), 6)
    return round(float(torch.quantile(rest, min(1.0, max(0.0, 1 - extra * len(scores) / len(rest))))), 6)


def calibrate(
    probs: torch.Tensor,
    distances: torch.Tensor | None,
    stats_sha256: str | None,
    target: float = TARGET,
    pixels: torch.Tensor | None = None,
    ideals_sha256: str | None = None,
    pixel_target: float = PIXEL_TARGET,
    energy: torch.Tensor | None = None,
    energy_target: float = ENERGY_TARGET,
) -> Abstention:
    """Thresholds for held-out digits: (N, C) probabilities, (N,) Mahalanobis distances, (N,) pixel distances,
    (N,) energies. "not sure" and the Mahalanobis distance reject `target` each; the pixel distance
    `pixel_target` of the digits beyond those (pixels None or pixel_target 0: no pixel check); the energy
    `energy_target` beyond the distances (energy None or energy_target 0: no energy check).
    Under MIN_CALIBRATION digits: the default margin and no "not a digit" check (their rates still measured)."""
    margin = margins(probs)
    n = max(len(margin), 1)
    enough = len(margin) >= MIN_CALIBRATION
    min_margin = round(float(torch.quantile(margin, target)), 6) if enough else DEFAULT_MIN_MARGIN
    far = torch.zeros(len(margin), dtype=torch.bool)
    max_distance = max_pixel = None
    if distances is not None and enough:
        max_distance = round(float(torch.quantile(distances.double(), 1 - target)), 6)
        far = distances > max_distance
    if pixels is not None and enough and pixel_target > 0:
        max_pixel = _threshold_beyond(pixels.double(), far, pixel_target)
        far = far | (pixels > max_pixel)
    min_energy = None
    if energy is not None and enough and energy_target > 0:
        min_energy = -_threshold_beyond(-energy.double(), far, energy_target)  # low energy: no class fits
        far = far | (energy < min_energy)
    close = margin < min_margin
    return Abstention(
        min_margin=min_margin,
        max_distance=max_distance,
        target=target if enough else None,
        n_valid=len(margin),
        false_reject=round(float((far | close).sum()) / n, 6),
        not_a_digit=round(float(far.sum()) / n, 6),
        not_sure=round(float((close & ~far).sum()) / n, 6),
        stats_sha256=stats_sha256 if max_distance is not None else None,
        max_pixel_distance=max_pixel,
        ideals_sha256=ideals_sha256 if max_pixel is not None else None,
        min_energy=min_energy,
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
    model: nn.Module,
    card: ModelCard,
    train: Digits,
    valid: Digits,
    out: Path,
    ideals: torch.Tensor,
    device: str = "cpu",
) -> Abstention:
    """At the end of training: the class statistics of the training digits (saved beside the model
    in `out`) and the thresholds for the validation digits, with the (C, 28, 28) ideal digits of the
    training digits (which the caller saves beside the model: `save_ideal_digits`). A model trained on
    photographed digits too (its card's config: `photos` > 0) also gets the energy check."""
    _, train_features = outputs_and_features(model, train.images, card.normalization, device)
    stats = fit_stats(train_features, train.labels, len(card.classes))
    outputs, features = outputs_and_features(model, valid.images, card.normalization, device)
    sha = save_stats(out, stats)
    photos = float((card.config or {}).get("photos") or 0.0)
    return calibrate(
        probabilities(outputs.double(), card.binary),
        stats.distances(features),
        sha,
        pixels=pixel_distances(valid.images, ideals),
        ideals_sha256=ideal_digits_sha256(ideals),
        energy=energies(outputs) if photos > 0 and not card.binary else None,
    )


def load_abstainer(model_dir: Path, card: ModelCard) -> Abstainer:
    """The card's thresholds with what its checks measure against, read from beside the model. A file the
    card calls for but that is absent (a model.json copied alone) leaves that check out; one that is not
    the file the card describes is refused."""
    calibration = card.abstain
    ideals = None
    if calibration is not None and calibration.max_pixel_distance is not None:
        ideals = load_ideal_digits(model_dir, len(card.classes))
        if ideals is not None and calibration.ideals_sha256 not in (None, ideal_digits_sha256(ideals)):
            path = beside(model_dir, IDEALS)
            raise DigitlabError(f"{path}: not the ideal digits the model's card describes (sha256 differs)")
    return Abstainer.of(card, load_stats(model_dir, card), ideals)
