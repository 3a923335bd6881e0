"""The model card: everything a saved model says about itself, as one typed and validated record.

`model.json` is a card in JSON. `card_sections.card_from_json` is the one place that reads it: it checks
every field's type and range once (a hostile or damaged file is refused with one line naming the
field), so the code that uses a card reads attributes, never `meta["..."]`. The reading lives in
`card_sections` (one parser per section) and `card_values` (one check per kind of value).

Schema versions: `format_version` 1 is the card digitlab has always written (a card without a
version is version 1); later fields (the evaluation's confusion matrix, the baseline's scores,
per-class counts, the abstention thresholds) are optional in it, so older cards still load. A higher
version is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict

import torch
from torch import nn

from ..models import build_model, model_config
from .card_values import CardError as CardError  # the card's error, where its types are

FORMAT, FORMAT_VERSION = "digitlab-model", 1

# Bounds that no digitlab model comes near and that keep a hostile card from asking for gigabytes
MAX_CLASSES = 1000
MAX_OPTIONS = {"width": 256, "n_hidden": 16_384}  # the CNN's first-stage channels, simple_net's hidden units
BASELINE_METRICS = ("l1", "rmse")


class Normalization(TypedDict):
    """How pixels become model inputs: x * scale, then (x - mean) / std."""

    scale: float
    mean: float
    std: float


PLAIN_NORMALIZATION = Normalization(scale=1 / 255, mean=0.0, std=1.0)  # pixels / 255, as non-CNN models train


@dataclass(frozen=True)
class Architecture:
    """Which model to rebuild: a registered name (`digitlab.models.MODELS`), its outputs and options."""

    name: str
    n_out: int
    options: dict[str, int] = field(default_factory=dict)  # width (cnn), n_hidden (simple_net)

    @classmethod
    def of(cls, model: nn.Module) -> Architecture:
        config = model_config(model)
        name, n_out = config.pop("name"), config.pop("n_out")
        return cls(name, n_out, config)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "n_out": self.n_out, **self.options}

    def build(self) -> nn.Module:
        return build_model(self.name, self.n_out, **self.options)

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """The state dict's names and shapes, from a model built on torch's meta device (no memory)."""
        with torch.device("meta"):
            model = self.build()
        return {name: tuple(t.shape) for name, t in model.state_dict().items()}


@dataclass(frozen=True)
class Scores:
    """Accuracy overall and per class (None for a class without images), as `accuracy_report` gives it."""

    accuracy: float | None
    per_class: dict[str, float | None]
    n_valid: int | None = None  # None in cards saved before the evaluation was kept whole
    confusion: list[list[int]] | None = None  # rows actual, columns predicted

    @classmethod
    def from_report(cls, report: Mapping[str, Any]) -> Scores:
        return cls(report["accuracy"], dict(report["per_class"]), report["n_valid"], report["confusion"])


@dataclass(frozen=True)
class Metrics(Scores):
    """The model scored on its validation digits when it was saved."""

    tta: bool = False  # with test-time augmentation (the run's --tta)


@dataclass(frozen=True)
class BaselineScores(Scores):
    """The pixel-similarity baseline (the saved ideal digits) scored on the same validation digits."""

    metric: str = "l1"


@dataclass(frozen=True)
class DataInfo:
    """What the model learned from and was validated on."""

    spec: str  # the data as the user named it (a dataset name or a path, as typed)
    provenance: dict[str, Any]  # source, url or path, sha256, notes
    valid: str | None  # "holdout", "valid split", or the validation set as named
    n_train: int
    n_valid: int
    train_counts: dict[str, int] | None = None  # images per class
    valid_counts: dict[str, int] | None = None


@dataclass(frozen=True)
class Abstention:
    """When the model says "this does not look like a digit" or "not sure" (`digitlab.predict.abstain`),
    calibrated on held-out digits when it was trained."""

    min_margin: float  # "not sure" below this gap between the two likeliest classes' probabilities
    max_distance: float | None = None  # "not a digit" above this distance to the nearest class (None: no such check)
    target: float | None = None  # the share of held-out digits each threshold was chosen to reject
    n_valid: int | None = None  # held-out digits it was calibrated on
    false_reject: float | None = None  # share of them rejected by either check
    not_a_digit: float | None = None  # share rejected as "not a digit"
    not_sure: float | None = None  # share rejected as "not sure"
    stats_sha256: str | None = None  # of abstain.safetensors (class means and precision of the features)
    max_pixel_distance: float | None = None  # "not a digit" above this L1 distance to the nearest ideal digit
    ideals_sha256: str | None = None  # of ideal_digits.safetensors (the ideal digits that distance is to)
    min_energy: float | None = None  # "not a digit" below this logsumexp of the outputs (models trained on photos)


@dataclass(frozen=True)
class ModelCard:
    """What `model.json` holds. Only architecture, classes, binary and normalization are required."""

    architecture: Architecture
    classes: tuple[str, ...]
    binary: bool  # one output, "is it the first class?" (the book's mnist_loss); else one output per class
    normalization: Normalization
    config: dict[str, Any] | None = None  # the resolved TrainConfig, as a dict of scalars (the seed among them)
    data: DataInfo | None = None
    history: list[dict[str, float]] | None = None  # RecorderCB.history: one row per epoch
    lr_schedule: list[float] | None = None  # the lr of every k-th batch
    fit_seconds: float | None = None
    weights_sha256: str | None = None
    world_size: int | None = None  # processes that trained it
    versions: dict[str, str] | None = None  # digitlab, torch, python
    metrics: Metrics | None = None
    baseline: BaselineScores | None = None
    checkpoint: bool = False  # saved after an epoch of a run still going (or interrupted)
    epoch: int | None = None  # a checkpoint's epoch
    abstain: Abstention | None = None  # calibrated thresholds; None in cards saved before digitlab abstained
    format_version: int = FORMAT_VERSION

    @property
    def seed(self) -> int | None:
        """The run's seed: its config's."""
        value = (self.config or {}).get("seed")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def label_smoothing(self) -> float:
        value = (self.config or {}).get("label_smoothing")
        return float(value) if isinstance(value, (int, float)) else 0.0

    @property
    def loss_name(self) -> str:
        """The loss the model trained with, as the top losses compute it per digit."""
        if self.binary:
            return "mnist_loss"
        smoothing = self.label_smoothing
        return f"cross_entropy (label smoothing {smoothing:g})" if smoothing else "cross_entropy"

    def to_json(self) -> dict[str, Any]:
        """The card as model.json writes it: fields that are None are left out."""
        out: dict[str, Any] = {
            "format": FORMAT,
            "format_version": self.format_version,
            "architecture": self.architecture.as_dict(),
            "classes": list(self.classes),
            "binary": self.binary,
            "normalization": dict(self.normalization),
        }
        optional: dict[str, Any] = {
            "config": self.config,
            "data": _data_json(self.data) if self.data else None,
            "history": self.history,
            "lr_schedule": self.lr_schedule,
            "fit_seconds": self.fit_seconds,
            "weights_sha256": self.weights_sha256,
            "world_size": self.world_size,
            "versions": self.versions,
            "metrics": _scores_json(self.metrics, tta=self.metrics.tta) if self.metrics else None,
            "baseline": _scores_json(self.baseline, metric=self.baseline.metric) if self.baseline else None,
            "checkpoint": True if self.checkpoint else None,
            "epoch": self.epoch,
            "abstain": {k: v for k, v in asdict(self.abstain).items() if v is not None} if self.abstain else None,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out


# ---- writing -----------------------------------------------------------------------------


def _scores_json(scores: Scores, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"accuracy": scores.accuracy, "per_class": scores.per_class, **extra}
    if scores.n_valid is not None:
        out["n_valid"] = scores.n_valid
    if scores.confusion is not None:
        out["confusion"] = scores.confusion
    return out


def _data_json(data: DataInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "spec": data.spec,
        "provenance": data.provenance,
        "valid": data.valid,
        "n_train": data.n_train,
        "n_valid": data.n_valid,
    }
    if data.train_counts is not None:
        out["train_counts"] = data.train_counts
    if data.valid_counts is not None:
        out["valid_counts"] = data.valid_counts
    return out
