"""Reading a parsed model.json into a `ModelCard`, section by section (architecture, normalization,
metrics, baseline, data, abstention ...): every field's type and range is checked once, and the first
field that is wrong is refused with a CardError that names it. Single values are checked by `card_values`."""

from __future__ import annotations

import inspect
from typing import Any

from ..models import MODELS
from .card import (
    BASELINE_METRICS,
    FORMAT,
    FORMAT_VERSION,
    MAX_CLASSES,
    MAX_OPTIONS,
    Abstention,
    Architecture,
    BaselineScores,
    CardError,
    DataInfo,
    Metrics,
    ModelCard,
    Normalization,
    Scores,
)
from .card_values import (
    check_depth,
    optional,
    read_bool,
    read_config,
    read_fraction,
    read_history,
    read_int,
    read_list,
    read_lr_schedule,
    read_number,
    read_object,
    read_per_class,
    read_plain,
    read_positive,
    read_sha256,
    read_text,
    read_versions,
    shown,
)


def card_from_json(value: object, card_type: type[ModelCard] = ModelCard) -> ModelCard:
    """Validate a parsed model.json; CardError names the first field that is wrong."""
    check_depth(value)
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise CardError(f'not a digitlab model file (no "format": "{FORMAT}")')
    version = value.get("format_version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise CardError(f"not a digitlab model file (format_version {shown(version)} is not a number)")
    if version > FORMAT_VERSION:
        raise CardError(f"made by a newer digitlab (format {version}); upgrade")
    if version < 1:
        raise CardError(f"not a digitlab model file (format_version {version} is not a known version)")
    for key in ("architecture", "classes", "binary", "normalization"):
        if key not in value:
            raise CardError(f'incomplete model description (no "{key}")')
    classes = _classes(value["classes"])
    architecture = _architecture(value["architecture"])
    binary = read_bool(value["binary"], "binary")
    _check_outputs(architecture, classes, binary)
    get = value.get
    return card_type(
        architecture=architecture,
        classes=classes,
        binary=binary,
        normalization=_normalization(value["normalization"]),
        config=_config_with_seed(get("config"), get("seed")),
        data=optional(get("data"), "data", lambda v, w: _data(v, w, classes)),
        history=optional(get("history"), "history", read_history),
        lr_schedule=optional(get("lr_schedule"), "lr_schedule", read_lr_schedule),
        fit_seconds=optional(get("fit_seconds"), "fit_seconds", lambda v, w: read_number(v, w, 0.0)),
        weights_sha256=optional(get("weights_sha256"), "weights_sha256", read_sha256),
        world_size=optional(get("world_size"), "world_size", lambda v, w: read_int(v, w, 1, 1_000_000)),
        versions=optional(get("versions"), "versions", read_versions),
        metrics=optional(get("metrics"), "metrics", lambda v, w: _metrics(v, w, classes)),
        baseline=optional(get("baseline"), "baseline", lambda v, w: _baseline(v, w, classes)),
        checkpoint=optional(get("checkpoint"), "checkpoint", read_bool) or False,
        epoch=optional(get("epoch"), "epoch", lambda v, w: read_int(v, w, 0, 10**9)),
        abstain=optional(get("abstain"), "abstain", _abstention),
        format_version=version,
    )


def _classes(value: object) -> tuple[str, ...]:
    names = read_list(value, "classes")
    if not names:
        raise CardError("no classes")
    if len(names) > MAX_CLASSES:
        raise CardError(f"classes: {len(names):,} classes (at most {MAX_CLASSES:,})")
    classes = tuple(read_text(name, f"classes[{i}]", 200) for i, name in enumerate(names))
    if any(not name for name in classes):
        raise CardError("classes: a class name is empty")
    if len(set(classes)) != len(classes):
        raise CardError(f"classes: names repeat ({', '.join(classes[:20])})")
    return classes


def _architecture(value: object) -> Architecture:
    spec = dict(read_object(value, "architecture"))
    if "name" not in spec:
        raise CardError('incomplete model description (no "architecture.name")')
    name = read_text(spec.pop("name"), "architecture.name", 100)
    if name not in MODELS:
        raise CardError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    if "n_out" not in spec:
        raise CardError('incomplete model description (no "architecture.n_out")')
    n_out = read_int(spec.pop("n_out"), "architecture.n_out", 1, MAX_CLASSES)
    takes = set(inspect.signature(MODELS[name]).parameters) - {"n_out"}
    options: dict[str, int] = {}
    for key, option in spec.items():
        if key not in takes:
            raise CardError(f"architecture: model {name!r} takes no option {key!r} (it takes: {sorted(takes)})")
        options[key] = read_int(option, f"architecture.{key}", 1, MAX_OPTIONS.get(key, MAX_CLASSES))
    return Architecture(name, n_out, options)


def _check_outputs(architecture: Architecture, classes: tuple[str, ...], binary: bool) -> None:
    """A binary model has one output and two classes; any other, one output per class."""
    n_out, n = architecture.n_out, len(classes)
    if binary and (n_out != 1 or n != 2):
        raise CardError(f"a binary model has 1 output and 2 classes, this one {n_out} output(s) and {n} classes")
    if not binary and n_out != n:
        raise CardError(f"{n} classes do not fit a model of {n_out} output(s) (one output per class)")


def _normalization(value: object) -> Normalization:
    spec = read_object(value, "normalization")
    for key in ("scale", "mean", "std"):
        if key not in spec:
            raise CardError(f'incomplete model description (no "normalization.{key}")')
    return Normalization(
        scale=read_positive(spec["scale"], "normalization.scale"),
        mean=read_number(spec["mean"], "normalization.mean", -1e6, 1e6),
        std=read_positive(spec["std"], "normalization.std"),
    )


def _scores(spec: dict[str, Any], where: str, classes: tuple[str, ...]) -> Scores:
    n = len(classes)
    n_valid = optional(spec.get("n_valid"), f"{where}.n_valid", lambda v, w: read_int(v, w, 0, 10**12))
    confusion = None
    if spec.get("confusion") is not None:
        rows = read_list(spec["confusion"], f"{where}.confusion")
        if len(rows) != n or any(not isinstance(row, list) or len(row) != n for row in rows):
            raise CardError(f"{where}.confusion must be {n} rows of {n} counts (one per class)")
        confusion = [[read_int(v, f"{where}.confusion", 0, 10**12) for v in row] for row in rows]
        if n_valid is not None and sum(map(sum, confusion)) != n_valid:
            raise CardError(f"{where}.confusion counts {sum(map(sum, confusion)):,} digits, not n_valid {n_valid:,}")
    return Scores(
        accuracy=read_fraction(spec.get("accuracy"), f"{where}.accuracy"),
        per_class=read_per_class(spec.get("per_class", {}), f"{where}.per_class", classes, read_fraction),
        n_valid=n_valid,
        confusion=confusion,
    )


def _metrics(value: object, where: str, classes: tuple[str, ...]) -> Metrics:
    spec = read_object(value, where)
    scores = _scores(spec, where, classes)
    tta = optional(spec.get("tta"), f"{where}.tta", read_bool) or False
    return Metrics(scores.accuracy, scores.per_class, scores.n_valid, scores.confusion, tta=tta)


def _baseline(value: object, where: str, classes: tuple[str, ...]) -> BaselineScores:
    spec = read_object(value, where)
    scores = _scores(spec, where, classes)
    metric = read_text(spec.get("metric", "l1"), f"{where}.metric", 10)
    if metric not in BASELINE_METRICS:
        raise CardError(f"{where}.metric must be one of {', '.join(BASELINE_METRICS)}, got {shown(metric)}")
    return BaselineScores(scores.accuracy, scores.per_class, scores.n_valid, scores.confusion, metric=metric)


def _data(value: object, where: str, classes: tuple[str, ...]) -> DataInfo:
    spec = read_object(value, where)

    def counts(key: str) -> dict[str, int] | None:
        return optional(
            spec.get(key),
            f"{where}.{key}",
            lambda v, w: read_per_class(v, w, classes, lambda c, cw: read_int(c, cw, 0, 10**12)),
        )

    return DataInfo(
        spec=read_text(spec.get("spec", ""), f"{where}.spec"),
        provenance={
            read_text(k, f"{where}.provenance", 200): read_plain(v, f"{where}.provenance.{k}", 1)
            for k, v in read_object(spec.get("provenance", {}), f"{where}.provenance").items()
        },
        valid=optional(spec.get("valid"), f"{where}.valid", read_text),
        n_train=read_int(spec.get("n_train", 0), f"{where}.n_train", 0, 10**12),
        n_valid=read_int(spec.get("n_valid", 0), f"{where}.n_valid", 0, 10**12),
        train_counts=counts("train_counts"),
        valid_counts=counts("valid_counts"),
    )


def _abstention(value: object, where: str) -> Abstention:
    spec = read_object(value, where)
    unknown = set(spec) - set(Abstention.__dataclass_fields__)
    if unknown:
        raise CardError(f"{where} has unknown fields: {sorted(unknown)[:5]}")
    if "min_margin" not in spec:
        raise CardError(f'incomplete model description (no "{where}.min_margin")')
    return Abstention(
        min_margin=float(read_number(spec["min_margin"], f"{where}.min_margin", 0.0, 1.0)),
        max_distance=optional(
            spec.get("max_distance"), f"{where}.max_distance", lambda v, w: float(read_number(v, w, 0.0))
        ),
        target=optional(spec.get("target"), f"{where}.target", read_fraction),
        n_valid=optional(spec.get("n_valid"), f"{where}.n_valid", lambda v, w: read_int(v, w, 0, 10**12)),
        false_reject=optional(spec.get("false_reject"), f"{where}.false_reject", read_fraction),
        not_a_digit=optional(spec.get("not_a_digit"), f"{where}.not_a_digit", read_fraction),
        not_sure=optional(spec.get("not_sure"), f"{where}.not_sure", read_fraction),
        stats_sha256=optional(spec.get("stats_sha256"), f"{where}.stats_sha256", read_sha256),
        max_pixel_distance=optional(
            spec.get("max_pixel_distance"),
            f"{where}.max_pixel_distance",
            lambda v, w: float(read_number(v, w, 0.0, 1.0)),
        ),
        ideals_sha256=optional(spec.get("ideals_sha256"), f"{where}.ideals_sha256", read_sha256),
        min_energy=optional(spec.get("min_energy"), f"{where}.min_energy", lambda v, w: float(read_number(v, w))),
    )


def _config_with_seed(config: object, seed: object) -> dict[str, Any] | None:
    """The card's config; a "seed" key beside it (older cards kept the seed there too) joins it."""
    checked = optional(config, "config", read_config)
    seed = optional(seed, "seed", lambda v, w: read_int(v, w, -(2**63), 2**64 - 1))
    if seed is None or (checked is not None and "seed" in checked):
        return checked
    return {**(checked or {}), "seed": seed}
