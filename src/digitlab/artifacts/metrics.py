"""Accuracy summaries shared by the baseline and trained models, and a model's top losses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


def accuracy_report(predicted: torch.Tensor, actual: torch.Tensor, classes: tuple[str, ...]) -> dict[str, Any]:
    """Overall and per-class accuracy plus the confusion matrix (rows actual, columns predicted).

    per_class holds None for a class with no examples (an accuracy over nothing is not 0).
    """
    n_classes = len(classes)
    confusion = torch.bincount(actual * n_classes + predicted, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )
    totals = confusion.sum(1)
    correct = confusion.diagonal()
    per_class = {
        name: (round(correct[i].item() / totals[i].item(), 6) if totals[i] else None) for i, name in enumerate(classes)
    }
    n = len(actual)
    return {
        "accuracy": round(correct.sum().item() / n, 6) if n else None,
        "per_class": per_class,
        "n_valid": n,
        "confusion": confusion.tolist(),
    }


@dataclass(frozen=True, repr=False)
class TopLosses:
    """The k digits a model got most wrong, in the loss it trained with, highest first.

    A run folder keeps them (top_losses.safetensors), so its report needs no data.
    """

    index: torch.Tensor  # (k,) int64: where each digit was in the digits scored
    images: torch.Tensor  # (k, 28, 28) uint8
    actual: torch.Tensor  # (k,) int64 class indices
    predicted: torch.Tensor  # (k,) int64 class indices
    loss: torch.Tensor  # (k,) float64
    probability: torch.Tensor  # (k,) float64: of the predicted class
    loss_name: str  # e.g. "mnist_loss", "cross_entropy (label smoothing 0.1)"

    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        """The worst few as "actual->predicted (loss)", not the tensors."""
        worst = ", ".join(f"#{i['index']} {i['actual']}->{i['predicted']} ({i['loss']:.2f})" for i in self.items()[:5])
        more = ", ..." if len(self) > 5 else ""
        return f"TopLosses({len(self)} digits by {self.loss_name}, class indices: {worst}{more})"

    def items(self) -> list[dict[str, Any]]:
        """One dict per digit: {"index", "actual", "predicted", "probability", "loss", "loss_name"}.

        "index" is the digit's place in the digits that were scored; `plot_top_losses(items, images, ...)`
        draws images[index] (with `self.images`, renumber: `{**item, "index": row}`).
        """
        return [
            {
                "index": int(self.index[i]),
                "actual": int(self.actual[i]),
                "predicted": int(self.predicted[i]),
                "probability": float(self.probability[i]),
                "loss": float(self.loss[i]),
                "loss_name": self.loss_name,
            }
            for i in range(len(self))
        ]
