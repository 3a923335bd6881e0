"""Accuracy summaries shared by the baseline and trained models."""

from __future__ import annotations

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
