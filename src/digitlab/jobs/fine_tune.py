"""Fine-tuning a saved model on your corrections, mixed with its own training data so it does not forget.

`digitlab train --data my-digits --init runs/cnn10` starts from the saved weights and normalisation,
and trains on a mix said in full before it starts: the model's original training digits (the card
names them: `data.spec`, and how it was validated), all of them up to MAX_ORIGINAL, and every
personal digit repeated so that they make up PERSONAL_SHARE of the epoch (at most MAX_REPEATS
times). One epoch at LR_FACTOR of the model's learning rate: measured on the CNN (BENCHMARKS.md),
20 corrections teach it a style of 7 while its accuracy on clean validation digits moves by 0.1%;
a 2,000-digit sample of the original data for 3 epochs cost it 0.25-0.3% at lr 0.1, 0.04 and 0.02.
It validates on the original validation digits, so the table shows whether anything was forgotten,
and `before_after` scores the model before and after on the personal digits and those digits.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..artifacts.serialization import SavedModel, load_model
from ..config import Settings
from ..core.progress import Log
from ..data.digits import DigitDataset, Digits, concat
from ..data.loading import load_dataset, train_and_valid
from ..errors import DigitlabError
from ..predict.predictor import Predictor
from ..train.config import TrainConfig

EPOCHS = 1  # passes over the mix
LR_FACTOR = 0.1  # of the lr the model was trained with: adjust, do not retrain
PERSONAL_SHARE = 0.1  # of each epoch's digits: the personal ones, repeated
MAX_REPEATS = 50  # a handful of corrections is not repeated into thousands of copies
MAX_ORIGINAL = 60_000  # original digits mixed in (a random sample beyond that)


@dataclass(frozen=True)
class FineTune:
    """What a fine-tuning run trains on and starts from."""

    init: SavedModel
    init_path: Path
    config: TrainConfig
    personal: Digits  # the corrections, relabelled to the model's classes
    personal_spec: str
    repeats: int  # each personal digit appears this many times per epoch
    original: Digits  # the sample of the original training digits
    original_total: int
    original_spec: str
    valid: Digits  # the original validation digits
    dataset: DigitDataset  # what `train` learns from: personal x repeats + original sample

    def describe(self) -> str:
        n, shown = len(self.dataset.train), len(self.personal) * self.repeats
        return (
            f"fine-tuning {self.init_path} ({self.config.model}, classes {', '.join(self.init.classes)}) on a mix of "
            f"{len(self.personal):,} digit{'' if len(self.personal) == 1 else 's'} of {self.personal_spec} "
            f"x {self.repeats} = {shown:,}"
            f" and {len(self.original):,} of its {self.original_total:,} training digits from {self.original_spec} "
            f"(seed {self.config.seed}): {n:,} per epoch, {self.config.epochs} epochs, "
            f"lr {self.config.lr:g}; validating on its {len(self.valid):,} validation digits"
        )


def plan(
    init_path: Path,
    personal_spec: str,
    settings: Settings,
    log: Log,
    overrides: dict[str, Any],
) -> FineTune:
    """Load the model to start from, the personal digits and the original data; mix them.

    overrides: TrainConfig fields given on the command line (epochs, lr, seed, device, threads, ...).
    """
    init = load_model(init_path)
    card = init.card
    model = overrides.pop("model", None)
    if model is not None and model != card.architecture.name:
        raise DigitlabError(f"--init {init_path} is a {card.architecture.name} model, not --model {model}")
    if card.data is None or not card.data.spec or card.config is None:
        raise DigitlabError(f"--init {init_path}: its card does not say what it was trained on; it cannot be mixed")
    personal = _personal(load_dataset(personal_spec, settings, log).all_training_data(), init, personal_spec)
    original_spec = str(card.data.provenance.get("original_data", card.data.spec))  # a fine-tuned model's own
    valid_spec = card.data.valid if card.data.valid not in (None, "holdout", "valid split") else None
    original_set, valid, _ = train_and_valid(original_spec, valid_spec, settings, log)
    if original_set.classes != card.classes:
        raise DigitlabError(
            f"--init {init_path}: its data {original_spec} has classes {list(original_set.classes)} now, "
            f"the model {list(card.classes)}"
        )
    saved = TrainConfig.from_saved(card.config)
    # photographing a share of the mix again (minutes) is asked for with --photos, not inherited from the card
    fine = {"epochs": EPOCHS, "lr": float(saved.lr or 0.1) * LR_FACTOR, "compile": False, "tta": False, "photos": 0.0}
    config = TrainConfig.from_saved({**card.config, **fine}, **overrides)
    original, repeats = _sample(original_set.train, len(personal), config.seed)
    train = concat(
        [Digits(personal.images.repeat(repeats, 1, 1), personal.labels.repeat(repeats), card.classes), original]
    )
    provenance = {
        **original_set.provenance,
        "original_data": original_spec,
        "fine_tuned_from": str(init_path),
        "personal": f"{len(personal)} digits of {personal_spec} x {repeats}",
        "original_sample": f"{len(original)} of {len(original_set.train)} training digits (seed {config.seed})",
    }
    dataset = DigitDataset(original_set.name, train, valid, provenance)
    return FineTune(
        init, init_path, config, personal, personal_spec, repeats, original, len(original_set.train),
        original_spec, valid, dataset,
    )  # fmt: skip


def _personal(digits: Digits, init: SavedModel, spec: str) -> Digits:
    extra = [c for c in digits.classes if c not in init.classes]
    if extra:
        raise DigitlabError(
            f"{spec} has classes the model lacks: {', '.join(extra)} (its classes: {', '.join(init.classes)})"
        )
    if len(digits) == 0:
        raise DigitlabError(f"{spec}: no digits to learn from")
    return digits.with_classes(init.classes)


def _sample(original: Digits, n_personal: int, seed: int) -> tuple[Digits, int]:
    """The original digits to mix in, and how often each personal digit repeats to make PERSONAL_SHARE."""
    n = min(len(original), MAX_ORIGINAL)
    index = torch.randperm(len(original), generator=torch.Generator().manual_seed(seed))[:n]
    repeats = min(MAX_REPEATS, max(1, math.ceil(PERSONAL_SHARE / (1 - PERSONAL_SHARE) * n / n_personal)))
    return original.subset(index), repeats


def before_after(fine: FineTune, after: Predictor) -> dict[str, Any]:
    """Accuracy before and after on the personal digits (trained on) and the original validation digits."""
    before = Predictor.from_saved(fine.init, after.device)
    out: dict[str, Any] = {}
    for name, digits in (("personal", fine.personal), ("original_valid", fine.valid)):
        out[name] = {
            "n": len(digits),
            "before": before.evaluate(digits)["accuracy"],
            "after": after.evaluate(digits)["accuracy"],
        }
    out["mix"] = {"personal": len(fine.personal), "repeats": fine.repeats, "original": len(fine.original)}
    out["config"] = asdict(fine.config)
    return out
