"""The model card: everything a saved model says about itself, as one typed and validated record.

`model.json` is a card in JSON. `ModelCard.from_json` is the one place that reads it: it checks
every field's type and range once (a hostile or damaged file is refused with one line naming the
field), so the code that uses a card reads attributes, never `meta["..."]`.

Schema versions: `format_version` 1 is the card digitlab has always written (a card without a
version is version 1); later fields (the evaluation's confusion matrix, the baseline's scores,
per-class counts, the abstention thresholds) are optional in it, so older cards still load. A higher
version is refused.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict, TypeVar

import torch
from torch import nn

from ..errors import DigitlabError
from ..models import MODELS, build_model, model_config

FORMAT, FORMAT_VERSION = "digitlab-model", 1

# Bounds that no digitlab model comes near and that keep a hostile card from asking for gigabytes
MAX_CLASSES = 1000
MAX_OPTIONS = {"width": 256, "n_hidden": 16_384}  # the CNN's first-stage channels, simple_net's hidden units
MAX_DEPTH = 16  # nesting of the card's JSON (it needs 4)
MAX_ITEMS = 100_000  # entries of any list or object (history rows, lr schedule values)
MAX_TEXT = 4096  # characters of any string (paths, notes)
BASELINE_METRICS = ("l1", "rmse")


class CardError(DigitlabError):
    """A card that is not valid; the message names the field (the loader adds the file's path)."""


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
    """When the model says "this does not look like a digit" or "not sure" (`digitlab.run.abstain`),
    calibrated on held-out digits when it was trained."""

    min_margin: float  # "not sure" below this gap between the two likeliest classes' probabilities
    max_distance: float | None = None  # "not a digit" above this distance to the nearest class (None: no such check)
    target: float | None = None  # the share of held-out digits each threshold was chosen to reject
    n_valid: int | None = None  # held-out digits it was calibrated on
    false_reject: float | None = None  # share of them rejected by either check
    not_a_digit: float | None = None  # share rejected as "not a digit"
    not_sure: float | None = None  # share rejected as "not sure"
    stats_sha256: str | None = None  # of abstain.safetensors (class means and precision of the features)


@dataclass(frozen=True)
class ModelCard:
    """What `model.json` holds. Only architecture, classes, binary and normalization are required."""

    architecture: Architecture
    classes: tuple[str, ...]
    binary: bool  # one output, "is it the first class?" (the book's mnist_loss); else one output per class
    normalization: Normalization
    config: dict[str, Any] | None = None  # the resolved TrainConfig, as a dict of scalars
    seed: int | None = None
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
            "seed": self.seed,
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

    @classmethod
    def from_json(cls, value: object) -> ModelCard:
        """Validate a parsed model.json; CardError names the first field that is wrong."""
        _check_depth(value)
        if not isinstance(value, dict) or value.get("format") != FORMAT:
            raise CardError(f'not a digitlab model file (no "format": "{FORMAT}")')
        version = value.get("format_version", 1)
        if not isinstance(version, int) or isinstance(version, bool):
            raise CardError(f"not a digitlab model file (format_version {_show(version)} is not a number)")
        if version > FORMAT_VERSION:
            raise CardError(f"made by a newer digitlab (format {version}); upgrade")
        if version < 1:
            raise CardError(f"not a digitlab model file (format_version {version} is not a known version)")
        for key in ("architecture", "classes", "binary", "normalization"):
            if key not in value:
                raise CardError(f'incomplete model description (no "{key}")')
        classes = _classes(value["classes"])
        architecture = _architecture(value["architecture"])
        binary = _bool(value["binary"], "binary")
        _check_outputs(architecture, classes, binary)
        get = value.get
        return cls(
            architecture=architecture,
            classes=classes,
            binary=binary,
            normalization=_normalization(value["normalization"]),
            config=_optional(get("config"), "config", _config),
            seed=_optional(get("seed"), "seed", lambda v, w: _int(v, w, -(2**63), 2**64 - 1)),
            data=_optional(get("data"), "data", lambda v, w: _data(v, w, classes)),
            history=_optional(get("history"), "history", _history),
            lr_schedule=_optional(get("lr_schedule"), "lr_schedule", _lr_schedule),
            fit_seconds=_optional(get("fit_seconds"), "fit_seconds", lambda v, w: _number(v, w, 0.0)),
            weights_sha256=_optional(get("weights_sha256"), "weights_sha256", _sha256),
            world_size=_optional(get("world_size"), "world_size", lambda v, w: _int(v, w, 1, 1_000_000)),
            versions=_optional(get("versions"), "versions", _versions),
            metrics=_optional(get("metrics"), "metrics", lambda v, w: _metrics(v, w, classes)),
            baseline=_optional(get("baseline"), "baseline", lambda v, w: _baseline(v, w, classes)),
            checkpoint=_optional(get("checkpoint"), "checkpoint", _bool) or False,
            epoch=_optional(get("epoch"), "epoch", lambda v, w: _int(v, w, 0, 10**9)),
            abstain=_optional(get("abstain"), "abstain", _abstention),
            format_version=version,
        )


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


# ---- reading: one checker per kind of value -------------------------------------------------

_T = TypeVar("_T")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_depth(value: object) -> None:
    """Refuse JSON nested deeper than MAX_DEPTH (checked without recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                raise CardError(f"not a digitlab model file (nested deeper than {MAX_DEPTH} levels)")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def _optional(value: object, where: str, check: Callable[[Any, str], _T]) -> _T | None:
    return None if value is None else check(value, where)


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CardError(f"{where} must be an object, got {_show(value)}")
    if len(value) > MAX_ITEMS:
        raise CardError(f"{where} has {len(value):,} entries (at most {MAX_ITEMS:,})")
    return value


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise CardError(f"{where} must be a list, got {_show(value)}")
    if len(value) > MAX_ITEMS:
        raise CardError(f"{where} has {len(value):,} entries (at most {MAX_ITEMS:,})")
    return value


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise CardError(f"{where} must be true or false, got {_show(value)}")
    return value


def _int(value: object, where: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise CardError(f"{where} must be a whole number from {low:,} to {high:,}, got {_show(value)}")
    return value


def _number(value: object, where: str, low: float = -math.inf, high: float = math.inf, finite: bool = True) -> float:
    """A JSON number; NaN and infinities only where `finite` is False (a loss can be NaN)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise CardError(f"{where} must be a number, got {_show(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float
        raise CardError(f"{where} must be a finite number, got {_show(value)}") from None
    if math.isnan(number) or math.isinf(number):
        if finite:
            raise CardError(f"{where} must be a finite number, got {_show(value)}")
        return number
    if not low <= number <= high:
        raise CardError(f"{where} must lie in [{low:g}, {high:g}], got {_show(value)}")
    return value  # ints stay ints (an epoch number reads back as it was written)


def _text(value: object, where: str, max_length: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise CardError(f"{where} must be a string, got {_show(value)}")
    if len(value) > max_length:
        raise CardError(f"{where} is {len(value):,} characters long (at most {max_length:,})")
    return value


def _scalar(value: object, where: str) -> Any:
    """A string, finite number, true/false or null."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return _number(value, where) if isinstance(value, float) else value
    if isinstance(value, str):
        return _text(value, where)
    raise CardError(f"{where} must be a string, number, true, false or null, got {_show(value)}")


def _plain(value: object, where: str, depth: int = 0) -> Any:
    """Scalars, and lists and objects of them a few levels deep (provenance)."""
    if depth > 3:
        raise CardError(f"{where} is nested too deeply")
    if isinstance(value, list):
        return [_plain(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(_list(value, where))]
    if isinstance(value, dict):
        return {_text(k, where, 200): _plain(v, f"{where}.{k}", depth + 1) for k, v in _object(value, where).items()}
    return _scalar(value, where)


def _classes(value: object) -> tuple[str, ...]:
    names = _list(value, "classes")
    if not names:
        raise CardError("no classes")
    if len(names) > MAX_CLASSES:
        raise CardError(f"classes: {len(names):,} classes (at most {MAX_CLASSES:,})")
    classes = tuple(_text(name, f"classes[{i}]", 200) for i, name in enumerate(names))
    if any(not name for name in classes):
        raise CardError("classes: a class name is empty")
    if len(set(classes)) != len(classes):
        raise CardError(f"classes: names repeat ({', '.join(classes[:20])})")
    return classes


def _architecture(value: object) -> Architecture:
    spec = dict(_object(value, "architecture"))
    if "name" not in spec:
        raise CardError('incomplete model description (no "architecture.name")')
    name = _text(spec.pop("name"), "architecture.name", 100)
    if name not in MODELS:
        raise CardError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    if "n_out" not in spec:
        raise CardError('incomplete model description (no "architecture.n_out")')
    n_out = _int(spec.pop("n_out"), "architecture.n_out", 1, MAX_CLASSES)
    takes = set(inspect.signature(MODELS[name]).parameters) - {"n_out"}
    options: dict[str, int] = {}
    for key, option in spec.items():
        if key not in takes:
            raise CardError(f"architecture: model {name!r} takes no option {key!r} (it takes: {sorted(takes)})")
        options[key] = _int(option, f"architecture.{key}", 1, MAX_OPTIONS.get(key, MAX_CLASSES))
    return Architecture(name, n_out, options)


def _check_outputs(architecture: Architecture, classes: tuple[str, ...], binary: bool) -> None:
    """A binary model has one output and two classes; any other, one output per class."""
    n_out, n = architecture.n_out, len(classes)
    if binary and (n_out != 1 or n != 2):
        raise CardError(f"a binary model has 1 output and 2 classes, this one {n_out} output(s) and {n} classes")
    if not binary and n_out != n:
        raise CardError(f"{n} classes do not fit a model of {n_out} output(s) (one output per class)")


def _normalization(value: object) -> Normalization:
    spec = _object(value, "normalization")
    for key in ("scale", "mean", "std"):
        if key not in spec:
            raise CardError(f'incomplete model description (no "normalization.{key}")')
    return Normalization(
        scale=_positive(spec["scale"], "normalization.scale"),
        mean=_number(spec["mean"], "normalization.mean", -1e6, 1e6),
        std=_positive(spec["std"], "normalization.std"),
    )


def _positive(value: object, where: str) -> float:
    number = _number(value, where, 0.0, 1e6)
    if number == 0:
        raise CardError(f"{where} must be above 0, got 0")
    return number


def _config(value: object, where: str) -> dict[str, Any]:
    return {_text(k, where, 100): _scalar(v, f"{where}.{k}") for k, v in _object(value, where).items()}


def _history(value: object, where: str) -> list[dict[str, float]]:
    rows: list[dict[str, float]] = []
    for i, row in enumerate(_list(value, where)):
        entries = _object(row, f"{where}[{i}]")
        rows.append({_text(k, where, 100): _number(v, f"{where}[{i}].{k}", finite=False) for k, v in entries.items()})
    return rows


def _lr_schedule(value: object, where: str) -> list[float]:
    return [_number(v, f"{where}[{i}]", 0.0) for i, v in enumerate(_list(value, where))]


def _sha256(value: object, where: str) -> str:
    text = _text(value, where, 64)
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise CardError(f"{where} must be 64 hexadecimal digits, got {_show(value)}")
    return text


def _versions(value: object, where: str) -> dict[str, str]:
    return {_text(k, where, 100): _text(v, f"{where}.{k}", 200) for k, v in _object(value, where).items()}


def _per_class(value: object, where: str, classes: tuple[str, ...], check: Callable[[Any, str], _T]) -> dict[str, _T]:
    spec = _object(value, where)
    unknown = set(spec) - set(classes)
    if unknown:
        raise CardError(f"{where} names classes the model does not have: {sorted(unknown)[:5]}")
    return {c: check(spec[c], f"{where}.{c}") for c in classes if c in spec}


def _fraction(value: object, where: str) -> float | None:
    return None if value is None else float(_number(value, where, 0.0, 1.0))


def _scores(spec: dict[str, Any], where: str, classes: tuple[str, ...]) -> Scores:
    n = len(classes)
    n_valid = _optional(spec.get("n_valid"), f"{where}.n_valid", lambda v, w: _int(v, w, 0, 10**12))
    confusion = None
    if spec.get("confusion") is not None:
        rows = _list(spec["confusion"], f"{where}.confusion")
        if len(rows) != n or any(not isinstance(row, list) or len(row) != n for row in rows):
            raise CardError(f"{where}.confusion must be {n} rows of {n} counts (one per class)")
        confusion = [[_int(v, f"{where}.confusion", 0, 10**12) for v in row] for row in rows]
        if n_valid is not None and sum(map(sum, confusion)) != n_valid:
            raise CardError(f"{where}.confusion counts {sum(map(sum, confusion)):,} digits, not n_valid {n_valid:,}")
    return Scores(
        accuracy=_fraction(spec.get("accuracy"), f"{where}.accuracy"),
        per_class=_per_class(spec.get("per_class", {}), f"{where}.per_class", classes, _fraction),
        n_valid=n_valid,
        confusion=confusion,
    )


def _metrics(value: object, where: str, classes: tuple[str, ...]) -> Metrics:
    spec = _object(value, where)
    scores = _scores(spec, where, classes)
    tta = _optional(spec.get("tta"), f"{where}.tta", _bool) or False
    return Metrics(scores.accuracy, scores.per_class, scores.n_valid, scores.confusion, tta=tta)


def _baseline(value: object, where: str, classes: tuple[str, ...]) -> BaselineScores:
    spec = _object(value, where)
    scores = _scores(spec, where, classes)
    metric = _text(spec.get("metric", "l1"), f"{where}.metric", 10)
    if metric not in BASELINE_METRICS:
        raise CardError(f"{where}.metric must be one of {', '.join(BASELINE_METRICS)}, got {_show(metric)}")
    return BaselineScores(scores.accuracy, scores.per_class, scores.n_valid, scores.confusion, metric=metric)


def _data(value: object, where: str, classes: tuple[str, ...]) -> DataInfo:
    spec = _object(value, where)

    def counts(key: str) -> dict[str, int] | None:
        return _optional(
            spec.get(key),
            f"{where}.{key}",
            lambda v, w: _per_class(v, w, classes, lambda c, cw: _int(c, cw, 0, 10**12)),
        )

    return DataInfo(
        spec=_text(spec.get("spec", ""), f"{where}.spec"),
        provenance={
            _text(k, f"{where}.provenance", 200): _plain(v, f"{where}.provenance.{k}", 1)
            for k, v in _object(spec.get("provenance", {}), f"{where}.provenance").items()
        },
        valid=_optional(spec.get("valid"), f"{where}.valid", _text),
        n_train=_int(spec.get("n_train", 0), f"{where}.n_train", 0, 10**12),
        n_valid=_int(spec.get("n_valid", 0), f"{where}.n_valid", 0, 10**12),
        train_counts=counts("train_counts"),
        valid_counts=counts("valid_counts"),
    )


def _abstention(value: object, where: str) -> Abstention:
    spec = _object(value, where)
    unknown = set(spec) - set(Abstention.__dataclass_fields__)
    if unknown:
        raise CardError(f"{where} has unknown fields: {sorted(unknown)[:5]}")
    if "min_margin" not in spec:
        raise CardError(f'incomplete model description (no "{where}.min_margin")')
    return Abstention(
        min_margin=float(_number(spec["min_margin"], f"{where}.min_margin", 0.0, 1.0)),
        max_distance=_optional(
            spec.get("max_distance"), f"{where}.max_distance", lambda v, w: float(_number(v, w, 0.0))
        ),
        target=_optional(spec.get("target"), f"{where}.target", _fraction),
        n_valid=_optional(spec.get("n_valid"), f"{where}.n_valid", lambda v, w: _int(v, w, 0, 10**12)),
        false_reject=_optional(spec.get("false_reject"), f"{where}.false_reject", _fraction),
        not_a_digit=_optional(spec.get("not_a_digit"), f"{where}.not_a_digit", _fraction),
        not_sure=_optional(spec.get("not_sure"), f"{where}.not_sure", _fraction),
        stats_sha256=_optional(spec.get("stats_sha256"), f"{where}.stats_sha256", _sha256),
    )
