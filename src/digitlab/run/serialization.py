"""Saved models: weights as safetensors, everything else as JSON. Loading never unpickles.

A saved model is a folder (or a path prefix) with two files:
  model.safetensors  the state dict
  model.json         {"format": "digitlab-model", "format_version": 1, "architecture": {...},
                      "classes": [...], "binary": bool, "normalization": {...}, ...}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import DigitlabError
from ..models import build_model, model_config

FORMAT, FORMAT_VERSION = "digitlab-model", 1
WEIGHTS, META = "model.safetensors", "model.json"
IDEALS = "ideal_digits.safetensors"  # the baseline's mean digits, shown beside the model by `serve`


@dataclass
class SavedModel:
    model: nn.Module
    meta: dict[str, Any]

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.meta["classes"])


def _paths(path: Path) -> tuple[Path, Path]:
    """A folder holds model.safetensors + model.json; `x.safetensors` or `x.json` names a pair."""
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        return path.with_suffix(".safetensors"), path.with_suffix(".json")
    return path / WEIGHTS, path / META


def save_model(model: nn.Module, path: Path, meta: dict[str, Any]) -> Path:
    """Write weights and metadata; returns the weights' path."""
    from safetensors.torch import save_file

    weights, meta_path = _paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = weights.with_name(weights.name + ".tmp")
    save_file(state, str(tmp))
    tmp.chmod(0o644)  # a model is meant to be shared like any other file
    tmp.replace(weights)
    full = {"format": FORMAT, "format_version": FORMAT_VERSION, "architecture": model_config(model), **meta}
    meta_path.write_text(json.dumps(full, indent=2) + "\n")
    return weights


def load_model(path: Path) -> SavedModel:
    """Rebuild a saved model in eval mode; anything that is not a digitlab model is a clean error."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights, meta_path = _paths(path)
    for p in (weights, meta_path):
        if not p.exists():
            raise DigitlabError(f"{path}: not a digitlab model ({p.name} is missing)")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DigitlabError(f"{meta_path}: not a digitlab model file ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DigitlabError(f'{meta_path}: not a digitlab model file (no "format": "{FORMAT}")')
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise DigitlabError(f"{meta_path}: not a digitlab model file (format_version {version!r} is not a number)")
    if version > FORMAT_VERSION:
        raise DigitlabError(f"{meta_path}: made by a newer digitlab (format {meta['format_version']}); upgrade")
    try:
        architecture = dict(meta["architecture"])
        model = build_model(architecture.pop("name"), **architecture)
        classes = meta["classes"]
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise ValueError("classes must be a list of names")
    except (KeyError, TypeError, ValueError) as e:
        raise DigitlabError(f"{meta_path}: incomplete model description ({e})") from None
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise DigitlabError(f"{weights}: corrupt weights file ({e})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        # torch's message is a header line ("Error(s) in loading state_dict for CNN:") then one
        # tab-indented line per problem: name the first problem, not the header
        lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
        first = lines[1] if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else lines[0]
        raise DigitlabError(f"{weights}: weights do not fit the architecture {meta['architecture']}: {first}") from None
    if not classes:
        raise DigitlabError(f"{meta_path}: no classes")
    return SavedModel(model.eval(), meta)


def save_ideal_digits(model_dir: Path, ideals: torch.Tensor) -> Path:
    """Keep the training data's (C, 28, 28) mean digits beside the model."""
    from safetensors.torch import save_file

    path = _paths(model_dir)[0].with_name(IDEALS)
    save_file({"ideal_digits": ideals.float().contiguous().cpu()}, str(path))
    path.chmod(0o644)
    return path


def load_ideal_digits(model_dir: Path) -> torch.Tensor | None:
    """The (C, 28, 28) ideal digits saved with the model, or None for a model saved without them."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = _paths(model_dir)[0].with_name(IDEALS)
    if not path.exists():
        return None
    try:
        return load_file(str(path))["ideal_digits"]
    except (SafetensorError, OSError, KeyError) as e:
        raise DigitlabError(f"{path}: corrupt ideal digits ({e})") from None
