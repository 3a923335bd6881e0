"""A saved line reader: `line_reader.safetensors` (its weights) and `line_reader.json` (its card), in a run
folder of its own. Names apart from a digit model's (model.*), so that neither is taken for the other.

The card: {"format": LINE_FORMAT, "format_version": 1, "architecture": {"name": "line-reader", "width",
"hidden"}, "config", "history", "scores": {"spaced", "touching"} (4-digit lines of validation digits read
exactly), "data": {"spec", "n_train", "n_valid"}, "fit_seconds", "weights_sha256", "versions"}. Saved as
save_model saves: weights then card, each fsynced; loading checks the names and shapes before building,
and the sha256 after reading, so a folder that is not a line reader is one line of error, never a traceback.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..core.defaults import LINE_READER
from ..core.durable import fsync_file, fsync_folder, save_tensors
from ..errors import DigitlabError
from ..line_reader import LineReader
from .serialization import LINE_META, LINE_WEIGHTS, MAX_CARD_BYTES, META, checked_state, filled, state_sha256

LINE_FORMAT, LINE_FORMAT_VERSION = "digitlab-line-reader", 1
MAX_WIDTH, MAX_HIDDEN = 256, 1024  # far past any reader worth training here; a hostile card builds nothing huge


def save_line_reader(model: LineReader, folder: Path, card: dict[str, Any]) -> Path:
    """Write the reader and its card (`card` without format, architecture or sha256: they are added)."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    full = {
        "format": LINE_FORMAT,
        "format_version": LINE_FORMAT_VERSION,
        "architecture": {"name": LINE_READER, **model.init_kwargs},
        **card,
        "weights_sha256": state_sha256(state),
    }
    folder.mkdir(parents=True, exist_ok=True)
    meta_tmp = folder / (LINE_META + ".tmp")
    try:
        meta_tmp.write_text(json.dumps(full, indent=2) + "\n")
        fsync_file(meta_tmp)
        save_tensors(folder / LINE_WEIGHTS, state)
    except OSError as e:
        meta_tmp.unlink(missing_ok=True)
        raise DigitlabError(f"cannot save the line reader to {folder}: {e.strerror or e}") from None
    meta_tmp.replace(folder / LINE_META)
    fsync_folder(folder)
    return folder / LINE_WEIGHTS


def read_line_card(folder: Path) -> dict[str, Any]:
    """The card of a saved line reader, checked; DigitlabError says what the folder is instead."""
    meta = folder / LINE_META
    if not folder.exists():
        raise DigitlabError(
            f"{folder}: no such folder (a line reader is a folder `digitlab train --model line-reader` wrote)"
        )
    if not meta.exists():
        what = "a digit model, not a line reader" if (folder / META).exists() else "not a line reader"
        raise DigitlabError(
            f"{folder}: {what} ({LINE_META} is missing): train one with `digitlab train --model {LINE_READER}`"
        )
    try:
        if meta.stat().st_size > MAX_CARD_BYTES:
            raise DigitlabError(f"{meta}: not a line reader's card (over {MAX_CARD_BYTES // 2**20} MB)")
        card = json.loads(meta.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise DigitlabError(f"{meta}: not a line reader's card ({type(e).__name__})") from None
    _check_card(card, meta)
    return dict(card)


def _check_card(card: Any, meta: Path) -> None:
    if not isinstance(card, dict) or card.get("format") != LINE_FORMAT:
        raise DigitlabError(f"{meta}: not a line reader's card (format is not {LINE_FORMAT!r})")
    if card.get("format_version") != LINE_FORMAT_VERSION:
        raise DigitlabError(f"{meta}: line reader format version {card.get('format_version')!r}; this digitlab reads 1")
    arch = card.get("architecture")
    if not isinstance(arch, dict) or set(arch) != {"name", "width", "hidden"} or arch["name"] != LINE_READER:
        raise DigitlabError(f"{meta}: architecture must be {{name: {LINE_READER}, width, hidden}}, got {arch!r}")
    for key, top in (("width", MAX_WIDTH), ("hidden", MAX_HIDDEN)):
        value = arch[key]
        if not (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= top):
            raise DigitlabError(f"{meta}: architecture {key} must be a whole number 1..{top}, got {value!r}")
    scores = card.get("scores", {})
    if not isinstance(scores, dict) or not all(
        isinstance(v, (int, float)) and math.isfinite(v) and 0 <= v <= 1 for v in scores.values()
    ):
        raise DigitlabError(f"{meta}: scores must be fractions 0..1, got {scores!r}")
    if not isinstance(card.get("weights_sha256"), str):
        raise DigitlabError(f"{meta}: weights_sha256 is missing")


def load_line_reader(folder: Path) -> tuple[LineReader, dict[str, Any]]:
    """A saved line reader in eval mode, and its card."""
    card = read_line_card(folder)
    weights = folder / LINE_WEIGHTS
    if not weights.exists():
        raise DigitlabError(f"{folder}: not a line reader ({LINE_WEIGHTS} is missing)")
    arch = card["architecture"]
    model = LineReader(arch["width"], arch["hidden"])
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    state = checked_state(weights, shapes, arch, card["weights_sha256"], folder / LINE_META)
    filled(model, state, weights, arch)
    return model.eval(), card
