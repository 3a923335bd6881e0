"""One way to use a trained model: `Predictor` (load once, then predict, evaluate, find the top losses).

It serves `digitlab predict`, `digitlab serve`, `digitlab evaluate`, the training run's final
evaluation and the report's top losses, so they all preprocess, pick labels and round alike:

    predictor = Predictor.load("runs/cnn")                 # device="cuda", tta=True as you like
    found = predictor.predict(digits)                      # (N, 28, 28) uint8, e.g. from to_mnist
    found.labels, found.probabilities, found.top_k
    found.answers                                          # the label, or None where it abstains
    found.reasons                                          # None, or why: "not sure: 4 or 9?"

Probabilities shown to people (`top_k`, the JSON of `predict` and `serve`) are rounded DOWN to
6 decimals (`shown_probability`): the shown probabilities of an image never add up to more than 1,
and a digit is never shown as surer than the model is. The tensors keep full float64 precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..artifacts.card import ModelCard
from ..artifacts.inference import labels_from_outputs, model_outputs, probabilities
from ..artifacts.metrics import TopLosses, accuracy_report
from ..artifacts.serialization import SavedModel, load_model
from ..data.digits import Digits
from ..errors import DigitlabError
from .abstain import Abstainer, load_abstainer
from .mahalanobis import outputs_and_features

DECIMALS = 6
_SCALE = 1_000_000  # 10 ** DECIMALS


def shown_probability(p: float) -> float:
    """A probability rounded down to 6 decimals, the one rounding rule of everything digitlab shows."""
    return math.floor(float(p) * _SCALE) / _SCALE


SHOWN = 8  # items a repr lists before "..."


@dataclass(frozen=True, repr=False)
class Predictions:
    """What a model says about N images."""

    classes: tuple[str, ...]
    indices: torch.Tensor  # (N,) int64: the predicted class of each image
    probabilities: torch.Tensor  # (N, C) float64: each row sums to 1
    top_k: list[list[tuple[str, float]]]  # per image, the k likeliest (class, shown probability), likeliest first
    reasons: list[str | None] | None = None  # per image: None, or why the model abstains (`digitlab.predict.abstain`)

    @property
    def labels(self) -> list[str]:
        """The predicted class names (the likeliest class, even where the model abstains)."""
        return [self.classes[int(i)] for i in self.indices]

    @property
    def answers(self) -> list[str | None]:
        """The labels, None where the model abstains ("not a digit", "not sure")."""
        reasons = self.reasons or [None] * len(self)
        return [None if reason else label for label, reason in zip(self.labels, reasons)]

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        """The answers and the likeliest probability of the first few, not the tensors."""
        first = ", ".join(
            f"{answer or 'abstains'} ({self.top_k[i][0][1]:.2f})" if self.top_k[i] else str(answer)
            for i, answer in enumerate(self.answers[:SHOWN])
        )
        more = f", ... ({len(self) - SHOWN} more)" if len(self) > SHOWN else ""
        return f"Predictions({len(self)} images, classes {list(self.classes)}: {first}{more})"

    def shown(self, i: int) -> dict[str, float]:
        """Image i's probability of every class, rounded down (the JSON's "probabilities")."""
        return {c: shown_probability(p) for c, p in zip(self.classes, self.probabilities[i].tolist())}

    def take(self, rows: list[int]) -> Predictions:
        """The predictions of these images only, in this order."""
        reasons = None if self.reasons is None else [self.reasons[i] for i in rows]
        index = torch.tensor(rows, dtype=torch.long)
        return Predictions(
            self.classes, self.indices[index], self.probabilities[index], [self.top_k[i] for i in rows], reasons
        )

    @staticmethod
    def joined(parts: list[Predictions]) -> Predictions:
        """One after the other (at least one; the same classes); reasons kept where every part has them."""
        reasons = None if any(p.reasons is None for p in parts) else [r for p in parts for r in p.reasons or []]
        return Predictions(
            parts[0].classes,
            torch.cat([p.indices for p in parts]),
            torch.cat([p.probabilities for p in parts]),
            [top for p in parts for top in p.top_k],
            reasons,
        )


class Predictor:
    """A model and its card, ready to read (N, 28, 28) uint8 digits.

    device: where the forward passes run (the model is moved there once).
    tta: average each image's outputs with those of its four one-pixel shifts (5x the work).
    abstainer: when `predict` abstains (default: the card's thresholds, without the "not a digit"
    checks, whose class statistics and ideal digits `load` reads from beside the model).
    """

    def __init__(
        self,
        model: nn.Module,
        card: ModelCard,
        device: str = "cpu",
        tta: bool = False,
        abstainer: Abstainer | None = None,
    ) -> None:
        self.model, self.card, self.device, self.tta = model.to(device), card, device, tta
        self.abstainer = abstainer or Abstainer.of(card)

    @classmethod
    def load(cls, path: Path | str, device: str = "cpu", tta: bool = False) -> Predictor:
        """Load a saved model (a run folder, or its model.json/.safetensors) once."""
        saved = load_model(Path(path))
        return cls(saved.model, saved.card, device, tta, load_abstainer(Path(path), saved.card))

    @classmethod
    def from_saved(cls, saved: SavedModel, device: str = "cpu", tta: bool = False) -> Predictor:
        return cls(saved.model, saved.card, device, tta)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.card.classes

    def __repr__(self) -> str:
        return (
            f"Predictor({self.card.architecture.name}, classes {', '.join(self.classes)}, "
            f"device {self.device}{', tta' if self.tta else ''})"
        )

    @staticmethod
    def _digits(images: torch.Tensor) -> torch.Tensor:
        images = torch.as_tensor(images)
        if images.dtype != torch.uint8 or images.dim() != 3 or tuple(images.shape[1:]) != (28, 28):
            raise DigitlabError(f"a Predictor reads (N, 28, 28) uint8 digits, got {tuple(images.shape)} {images.dtype}")
        return images

    def outputs(self, images: torch.Tensor) -> torch.Tensor:
        """Raw outputs (N, n_out) on the CPU, in eval mode, chunk by chunk."""
        images = self._digits(images)
        return model_outputs(self.model, images, self.card.normalization, self.device, tta=self.tta)

    def outputs_and_features(
        self, images: torch.Tensor, outputs: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw outputs (N, n_out) (`outputs`, when already computed) and the features (N, D) the "not a
        digit" check measures: one pass without TTA, from which the outputs come too unless `tta`."""
        plain, features = outputs_and_features(self.model, self._digits(images), self.card.normalization, self.device)
        if outputs is None:
            outputs = self.outputs(images) if self.tta else plain
        return outputs, features

    def predict(
        self, images: torch.Tensor, k: int = 3, outputs: torch.Tensor | None = None, abstain: bool = True
    ) -> Predictions:
        """Labels, probabilities and the k likeliest classes of each image (k is capped by the classes).

        outputs: `self.outputs(images)`, when already computed.
        abstain: also say where the model abstains (`.reasons`, `.answers`).
        """
        if k < 1:
            raise DigitlabError("k must be at least 1")
        digits = self._digits(images)
        features = plain = None  # plain: the outputs without TTA, as the checks were calibrated on
        if abstain and self.abstainer.checks_features:
            plain, features = outputs_and_features(self.model, digits, self.card.normalization, self.device)
        if outputs is None:
            outputs = plain if plain is not None and not self.tta else self.outputs(digits)
        binary = self.card.binary
        indices = labels_from_outputs(outputs, binary)  # (N,)
        probs = probabilities(outputs.double(), binary)  # (N, C) float64
        # likeliest first, the predicted class first among equals (a binary model's tie is the second class)
        key = probs.clone()
        key[torch.arange(len(key)), indices] = math.inf
        order = key.topk(min(k, len(self.classes)), dim=1).indices  # (N, k)
        ranked = probs.gather(1, order)
        top_k = [
            [(self.classes[j], shown_probability(p)) for j, p in zip(row_order, row_probs)]
            for row_order, row_probs in zip(order.tolist(), ranked.tolist())
        ]
        if abstain and plain is None and self.abstainer.calibration.min_energy is not None:  # no features pass
            plain = model_outputs(self.model, digits, self.card.normalization, self.device) if self.tta else outputs
        reasons = self.abstainer.reasons(probs, self.classes, features, digits, plain) if abstain else None
        return Predictions(self.classes, indices, probs, top_k, reasons)

    def _check(self, digits: Digits) -> None:
        if not isinstance(digits, Digits):
            raise DigitlabError(
                f"evaluate and top_losses take Digits (images, labels and class names, e.g. load_dataset(...).valid), "
                f"not {type(digits).__name__}: for images alone, use predict(images)"
            )
        if digits.classes != self.classes:
            raise DigitlabError(
                f"the digits' classes {list(digits.classes)} are not the model's {list(self.classes)}: "
                "use digits.with_classes(predictor.classes)"
            )

    def evaluate(self, digits: Digits, outputs: torch.Tensor | None = None) -> dict[str, Any]:
        """Accuracy, per-class accuracy and the confusion matrix on digits of the model's classes."""
        self._check(digits)
        outputs = self.outputs(digits.images) if outputs is None else outputs
        return accuracy_report(labels_from_outputs(outputs, self.card.binary), digits.labels, digits.classes)

    def top_losses(self, digits: Digits, k: int = 9, outputs: torch.Tensor | None = None) -> TopLosses:
        """The k digits with the highest loss, in the loss the model trained with, highest first.

        Binary models output one logit z of the first class and trained with mnist_loss: 1 - sigmoid(z)
        for a first-class digit, sigmoid(z) for the second, in 0..1. Multi-class models: cross-entropy,
        with the card's label smoothing.
        """
        self._check(digits)
        outputs = self.outputs(digits.images) if outputs is None else outputs
        labels = digits.labels
        binary = self.card.binary
        probs = probabilities(outputs.double(), binary)  # (N, C)
        predicted = labels_from_outputs(outputs, binary)  # (N,)
        if binary:
            first = torch.sigmoid(outputs[:, 0].float())  # (N,) p(first class)
            losses = torch.where(labels == 0, 1 - first, first)  # mnist_loss per item: distance from the right side
        else:
            losses = F.cross_entropy(
                outputs.float(), labels, reduction="none", label_smoothing=self.card.label_smoothing
            )
        order = torch.argsort(losses, descending=True, stable=True)[:k]
        return TopLosses(
            index=order,
            images=digits.images[order],
            actual=labels[order],
            predicted=predicted[order],
            loss=losses[order].double(),
            probability=probs[order, predicted[order]],
            loss_name=self.card.loss_name,
        )


def evaluate(saved: SavedModel, digits: Digits, device: str = "cpu", tta: bool = False) -> dict[str, Any]:
    """Accuracy, per-class accuracy and confusion matrix of a saved model on digits of its classes."""
    return Predictor.from_saved(saved, device, tta).evaluate(digits)
