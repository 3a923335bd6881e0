"""Saved models: weights as safetensors, the model card as JSON. Loading never unpickles.

A saved model is a folder (or a path prefix) with two files:
  model.safetensors  the state dict
  model.json         the model card (`digitlab.artifacts.card.ModelCard`): {"format": "digitlab-model",
                     "format_version": 1, "architecture": {...}, "classes": [...], "binary": bool,
                     "normalization": {...}, ...}
A training run's folder also holds what its report shows without the data:
  ideal_digits.safetensors  the baseline's (C, 28, 28) mean digits of the training data
  top_losses.safetensors    the validation digits with the highest loss, with their labels and losses

`load_model` checks the card once (types and ranges) and the weights' names and shapes against
its architecture before building the model, so a hostile folder costs neither memory nor a traceback.

A model is written as a unit: weights and card go to temporary files, are fsynced, and are renamed
into place weights first, card last. The card records the weights' sha256 (`state_sha256`), and
loading refuses a pair whose weights are not the ones the card names: a save interrupted between
the two renames (a kill, a full disk) leaves a pair that is refused in one line, never loaded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.durable import fsync_file, fsync_folder, save_tensors
from ..errors import DigitlabError
from .card import FORMAT, FORMAT_VERSION, Architecture, CardError, ModelCard
from .card_sections import card_from_json
from .inference import check_answers
from .metrics import TopLosses

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "IDEALS",
    "META",
    "TOP_LOSSES",
    "WEIGHTS",
    "SavedModel",
    "ideal_digits_sha256",
    "load_ideal_digits",
    "load_model",
    "load_top_losses",
    "read_card",
    "save_ideal_digits",
    "save_model",
    "save_top_losses",
    "state_sha256",
]

WEIGHTS, META = "model.safetensors", "model.json"
LINE_WEIGHTS, LINE_META = "line_reader.safetensors", "line_reader.json"  # a line reader's folder (line_files)
IDEALS = "ideal_digits.safetensors"  # the baseline's mean digits, shown beside the model by `serve` and the report
TOP_LOSSES = "top_losses.safetensors"  # the report's top-loss digits
MAX_CARD_BYTES = 32 * 1024 * 1024  # a card is kilobytes; a long history a few megabytes


@dataclass
class SavedModel:
    model: nn.Module
    card: ModelCard

    @property
    def classes(self) -> tuple[str, ...]:
        return self.card.classes


# A test hook: called between making the new weights visible and making the new card visible
_between_renames: Callable[[], None] | None = None


def state_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """A fingerprint of a state dict (names and bytes, in name order): the card's `weights_sha256`."""
    digest = hashlib.sha256()
    for name, tensor in sorted(state.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _paths(path: Path) -> tuple[Path, Path]:
    """A folder holds model.safetensors + model.json; `x.safetensors` or `x.json` names a pair."""
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        return path.with_suffix(".safetensors"), path.with_suffix(".json")
    return path / WEIGHTS, path / META


def beside(path: Path, name: str) -> Path:
    return _paths(path)[0].with_name(name)


def save_model(model: nn.Module, path: Path, card: ModelCard | Mapping[str, Any]) -> Path:
    """Write weights and card; returns the weights' path.

    card: a ModelCard, or a mapping of its JSON fields (at least classes, binary, normalization).
    The architecture is always the model's own. A card that would not load is an error here.
    """
    architecture = Architecture.of(model)
    try:
        if isinstance(card, ModelCard):
            card = card_from_json(replace(card, architecture=architecture).to_json())
        else:
            card = card_from_json({"format": FORMAT, **card, "architecture": architecture.as_dict()})
    except CardError as e:
        raise DigitlabError(f"cannot save this model card: {e}") from None
    check_answers(model, card.normalization, "not saved")  # a broken model is never written
    weights, meta_path = _paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    card = replace(card, weights_sha256=state_sha256(state))
    meta_tmp = meta_path.with_name(meta_path.name + ".tmp")
    try:
        meta_tmp.write_text(json.dumps(card.to_json(), indent=2) + "\n")
        meta_tmp.chmod(0o644)
        fsync_file(meta_tmp)
        save_tensors(weights, state)
    except OSError as e:  # a full disk, say: the card already there is untouched, the weights too or refused
        meta_tmp.unlink(missing_ok=True)
        raise DigitlabError(f"cannot save the model to {weights.parent}: {e.strerror or e}") from None
    if _between_renames is not None:
        _between_renames()
    meta_tmp.replace(meta_path)  # last: the card names the weights' sha256, so a lone new file is refused
    fsync_folder(weights.parent)
    return weights


NO_SUCH_MODEL = "no such file or folder (not a digitlab model: a folder `digitlab train --out` wrote)"


def _not_a_model(path: Path, missing: str) -> DigitlabError:
    if path.is_dir() and (path / LINE_META).exists():
        return DigitlabError(f"{path}: a line reader, not a digit model: give it with --lines beside a digit model")
    return DigitlabError(f"{path}: not a digitlab model ({missing} is missing)")


def read_card(path: Path) -> ModelCard:
    """The card of a saved model (a folder, or its .json/.safetensors), validated; no weights are read."""
    meta_path = _paths(path)[1]
    if not path.exists():
        raise DigitlabError(f"{path}: {NO_SUCH_MODEL}")
    if not meta_path.exists():
        raise _not_a_model(path, meta_path.name)
    try:
        if meta_path.stat().st_size > MAX_CARD_BYTES:
            raise DigitlabError(f"{meta_path}: not a digitlab model file (over {MAX_CARD_BYTES // 2**20} MB)")
        value = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DigitlabError(f"{meta_path}: not a digitlab model file ({e})") from None
    except RecursionError:
        raise DigitlabError(f"{meta_path}: not a digitlab model file (nested too deeply)") from None
    try:
        return card_from_json(value)
    except CardError as e:
        raise DigitlabError(f"{meta_path}: {e}") from None


def _weight_shapes(weights: Path) -> dict[str, tuple[int, ...]]:
    """Names and shapes from the safetensors header, without reading the tensors."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(weights), "pt") as f:
            return {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}  # noqa: SIM118  # not a dict
    except (SafetensorError, OSError, ValueError) as e:
        raise DigitlabError(f"{weights}: corrupt weights file ({e})") from None


def _shape_problem(found: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]]) -> str | None:
    """The first difference between the weights' file and the architecture, in torch's words; None if they fit."""
    for name, shape in expected.items():
        if name not in found:
            return f'Missing key(s) in state_dict: "{name}"'
        if found[name] != shape:
            return (
                f"size mismatch for {name}: copying a param with shape {list(found[name])} from checkpoint, "
                f"the shape in current model is {list(shape)}"
            )
    unexpected = [name for name in found if name not in expected]
    return f'Unexpected key(s) in state_dict: "{unexpected[0]}"' if unexpected else None


def checked_state(
    weights: Path, shapes: dict[str, tuple[int, ...]], architecture: object, sha256: str | None, card: Path
) -> dict[str, torch.Tensor]:
    """The weights' state dict once its names and shapes fit `shapes` (read from the header first: weights
    that do not fit are never read) and its sha256 is the card's (None: an old card, not checked)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    problem = _shape_problem(_weight_shapes(weights), shapes)
    if problem is not None:
        raise DigitlabError(f"{weights}: weights do not fit the architecture {architecture}: {problem}")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise DigitlabError(f"{weights}: corrupt weights file ({e})") from None
    if sha256 is not None and state_sha256(state) != sha256:
        raise DigitlabError(
            f"{weights}: these weights are not the ones {card.name} describes (sha256 differs): "
            "a save was interrupted; save or train the model again"
        )
    return state


def filled(model: nn.Module, state: dict[str, torch.Tensor], weights: Path, architecture: object) -> nn.Module:
    """The model with the state's weights, in eval mode; torch's refusal (a dtype it cannot copy from) in one line."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        # torch's message is a header line ("Error(s) in loading state_dict for CNN:") then one
        # tab-indented line per problem: name the first problem, not the header
        lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
        first = lines[1] if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else lines[0]
        raise DigitlabError(f"{weights}: weights do not fit the architecture {architecture}: {first}") from None
    return model.eval()


def load_model(path: Path) -> SavedModel:
    """Rebuild a saved model in eval mode; anything that is not a digitlab model is a clean error."""
    weights, meta_path = _paths(path)
    if not path.exists():  # a mistyped run folder: say so, not that a file in it is missing
        raise DigitlabError(f"{path}: {NO_SUCH_MODEL}")
    for p in (weights, meta_path):
        if not p.exists():
            raise _not_a_model(path, p.name)
    card = read_card(path)
    architecture = card.architecture
    state = checked_state(weights, architecture.state_shapes(), architecture.as_dict(), card.weights_sha256, meta_path)
    model = filled(architecture.build(), state, weights, architecture.as_dict())
    check_answers(model.eval(), card.normalization, str(path))
    return SavedModel(model, card)


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> Path:
    try:
        return save_tensors(path, tensors, metadata)
    except OSError as e:  # a full disk, say
        raise DigitlabError(f"cannot save {path}: {e.strerror or e}") from None


def load_tensors(path: Path, what: str) -> tuple[dict[str, torch.Tensor], dict[str, str]] | None:
    from safetensors import SafetensorError, safe_open

    if not path.exists():
        return None
    try:
        with safe_open(str(path), "pt") as f:
            return {name: f.get_tensor(name) for name in f.keys()}, dict(f.metadata() or {})  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as e:
        raise DigitlabError(f"{path}: corrupt {what} ({e})") from None


def save_ideal_digits(model_dir: Path, ideals: torch.Tensor) -> Path:
    """Keep the training data's (C, 28, 28) mean digits beside the model."""
    return write_tensors(beside(model_dir, IDEALS), {"ideal_digits": ideals.float()})


def ideal_digits_sha256(ideals: torch.Tensor) -> str:
    """The fingerprint of the ideal digits as `save_ideal_digits` writes them (the card's `abstain.ideals_sha256`)."""
    return state_sha256({"ideal_digits": ideals.float()})


def load_ideal_digits(model_dir: Path, n_classes: int | None = None) -> torch.Tensor | None:
    """The (C, 28, 28) ideal digits saved with the model, or None for a model saved without them.

    n_classes: the model's number of classes, which C must be.
    """
    path = beside(model_dir, IDEALS)
    loaded = load_tensors(path, "ideal digits")
    if loaded is None:
        return None
    ideals = loaded[0].get("ideal_digits")
    if ideals is None:
        raise DigitlabError(f"{path}: corrupt ideal digits (no tensor named ideal_digits)")
    shape = tuple(ideals.shape)
    if (
        not ideals.is_floating_point()
        or len(shape) != 3
        or shape[1:] != (28, 28)
        or (n_classes is not None and shape[0] != n_classes)
        or not bool(torch.isfinite(ideals).all())
    ):
        wanted = f"({n_classes if n_classes is not None else 'C'}, 28, 28) finite floats"
        raise DigitlabError(f"{path}: corrupt ideal digits (want {wanted}, got {shape} {ideals.dtype})")
    return ideals.float()


def save_top_losses(model_dir: Path, top: TopLosses) -> Path:
    """Keep the top-loss digits (images, labels, losses) beside the model, for the report."""
    tensors = {
        "index": top.index.long(),
        "images": top.images,
        "actual": top.actual.long(),
        "predicted": top.predicted.long(),
        "loss": top.loss.double(),
        "probability": top.probability.double(),
    }
    return write_tensors(beside(model_dir, TOP_LOSSES), tensors, {"loss_name": top.loss_name})


def load_top_losses(model_dir: Path, n_classes: int) -> TopLosses | None:
    """The top-loss digits saved with a run, or None for a model saved without them."""
    path = beside(model_dir, TOP_LOSSES)
    loaded = load_tensors(path, "top losses")
    if loaded is None:
        return None
    tensors, metadata = loaded
    try:
        top = TopLosses(
            index=tensors["index"],
            images=tensors["images"],
            actual=tensors["actual"],
            predicted=tensors["predicted"],
            loss=tensors["loss"],
            probability=tensors["probability"],
            loss_name=metadata.get("loss_name", "loss")[:100],
        )
    except KeyError as e:
        raise DigitlabError(f"{path}: corrupt top losses (no tensor named {e})") from None
    k = len(top.index)
    labels_ok = all(
        t.dtype == torch.int64 and tuple(t.shape) == (k,) and (k == 0 or 0 <= int(t.min()) <= int(t.max()) < n_classes)
        for t in (top.actual, top.predicted)
    )
    if (
        not labels_ok
        or k > 1000
        or top.images.dtype != torch.uint8
        or tuple(top.images.shape) != (k, 28, 28)
        or any(tuple(t.shape) != (k,) or not t.is_floating_point() for t in (top.loss, top.probability))
    ):
        raise DigitlabError(f"{path}: corrupt top losses (not {k} digits of {n_classes} classes)")
    return top
