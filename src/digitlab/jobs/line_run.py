"""Training a line reader as a job (`digitlab train --model line-reader`): fit on lines of the training
digits, score on lines of the validation digits, save `line_reader.safetensors` and its card to the run
folder; prints nothing (the CLI says what happened)."""

from __future__ import annotations

import platform
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..artifacts.line_files import save_line_reader
from ..data.digits import Digits
from ..line_reader import LineReader
from ..train.config import TrainConfig
from ..train.line_recipe import LineTrainResult, fit_lines
from .train_run import DataSource


def line_run(
    config: TrainConfig, train: Digits, valid: Digits, out: Path, source: DataSource, progress: bool = True
) -> tuple[LineTrainResult, Path]:
    """Train, score and save a line reader to `out`; the result and the weights' path."""
    trained = fit_lines(config, train, valid, progress)
    model = trained.learner.model
    assert isinstance(model, LineReader)  # fit_lines built it
    card: dict[str, Any] = {
        "config": asdict(trained.config),
        "history": trained.history,
        "scores": trained.scores,
        "data": {"spec": source.spec, "provenance": source.provenance, "n_train": len(train), "n_valid": len(valid)},
        "fit_seconds": round(trained.fit_seconds, 4),
        "threads": trained.threads,
        "versions": {"digitlab": __version__, "torch": torch.__version__, "python": platform.python_version()},
    }
    return trained, save_line_reader(model.cpu(), out, card)
