"""A training run as the CLI does it: load data, train, evaluate, save, report as one dict."""

from __future__ import annotations

import hashlib
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..baseline import ideal_digits
from ..config import Settings
from ..data.digits import Digits
from ..data.loading import train_and_valid
from ..progress import Log, quiet_log
from ..train import distributed
from ..train.distributed import DistEnv
from ..train.learner import Learner
from ..train.recipe import TrainConfig, TrainResult, resolve_device, train
from .inference import labels_from_outputs, model_outputs
from .metrics import accuracy_report
from .serialization import SavedModel, save_ideal_digits, save_model


def evaluate(saved: SavedModel, digits: Digits, device: str = "cpu", tta: bool = False) -> dict[str, Any]:
    """Accuracy, per-class accuracy and confusion matrix of a model on digits of its classes.

    tta: average each image's outputs with those of its one-pixel shifts (5 forward passes).
    """
    outputs = model_outputs(saved.model.to(device), digits.images, saved.meta["normalization"], device, tta=tta)
    predicted = labels_from_outputs(outputs, saved.meta["binary"])
    return accuracy_report(predicted, digits.labels, digits.classes)


def default_out_dir(data: str, model: str) -> Path:
    stem = Path(data).name or "data"
    return Path("runs") / f"{stem}-{model}-{time.strftime('%Y%m%d-%H%M%S')}"


def _subsample(values: list[float], at_most: int) -> list[float]:
    """Every k-th value so that at most `at_most` remain (a schedule for a plot, not a log)."""
    step = max(1, -(-len(values) // at_most))
    return [float(v) for v in values[::step]]


def weights_sha256(model: torch.nn.Module) -> str:
    """A fingerprint of the weights: equal on every rank after distributed training."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def train_run(
    config: TrainConfig,
    data: str,
    valid: str | None,
    out: Path | None,
    settings: Settings,
    log: Log,
    progress: bool = True,
    checkpoints: bool = False,
    dist_env: DistEnv | None = None,
) -> dict[str, Any]:
    """Everything `digitlab train` does; returns the JSON-ready result.

    checkpoints: also save the model after every epoch to OUT/checkpoint (overwritten each time),
    loadable by `digitlab evaluate` while training goes on or after it was interrupted.
    dist_env: this process's place in a torchrun job; only rank 0 logs, saves and reports
    (the others return {"rank", "weights_sha256"}).
    """
    dist_env = dist_env or DistEnv()
    if not dist_env.is_main:
        log = quiet_log
    try:
        distributed.init(dist_env, resolve_device(config.device))
        return _train_run(config, data, valid, out, settings, log, progress, checkpoints, dist_env)
    finally:
        distributed.shutdown()


def _train_run(
    config: TrainConfig,
    data: str,
    valid: str | None,
    out: Path | None,
    settings: Settings,
    log: Log,
    progress: bool,
    checkpoints: bool,
    dist_env: DistEnv,
) -> dict[str, Any]:
    dataset, valid_digits, facts = train_and_valid(data, valid, settings, log)
    train_digits = dataset.train
    resolved = config.resolved(len(train_digits))
    out = out or default_out_dir(data, resolved.model)
    log(
        f"training {resolved.model} on {len(train_digits):,} images ({', '.join(train_digits.classes)}), "
        f"validating on {len(valid_digits):,}; {resolved.epochs} epochs, lr {resolved.lr}, bs {resolved.bs}, "
        f"seed {resolved.seed}, {torch.get_num_threads() if not resolved.threads else resolved.threads} threads"
    )
    if dist_env.enabled:
        log(f"distributed: {dist_env.world_size} processes, each on its shard of every epoch")
    result: TrainResult = train(
        config,
        train_digits,
        valid_digits,
        progress=progress,
        checkpoint_dir=out / "checkpoint" if checkpoints else None,
        dist_env=dist_env,
    )
    model = result.learner.model
    fingerprint = weights_sha256(model)
    if dist_env.enabled:
        print(f"rank {dist_env.rank}: weights sha256 {fingerprint}", file=sys.stderr, flush=True)
    if not dist_env.is_main:
        return {"rank": dist_env.rank, "weights_sha256": fingerprint}
    meta = {
        "classes": list(train_digits.classes),
        "binary": result.binary,
        "normalization": result.normalization,
        "config": asdict(result.config),
        "seed": result.config.seed,
        "data": {
            "spec": data,
            "provenance": dataset.provenance,
            "valid": facts.get("valid"),
            "n_train": len(train_digits),
            "n_valid": len(valid_digits),
        },
        "history": result.history,
        "lr_schedule": _subsample(result.learner.recorder.lrs, 1000),
        "fit_seconds": round(result.fit_seconds, 4),
        "weights_sha256": fingerprint,
        "world_size": dist_env.world_size,
        "versions": {"digitlab": __version__, "torch": torch.__version__, "python": platform.python_version()},
    }
    saved = SavedModel(model, meta)
    report = evaluate(saved, valid_digits, result.config.device, tta=result.config.tta)
    meta["metrics"] = {"accuracy": report["accuracy"], "per_class": report["per_class"], "tta": result.config.tta}
    model_path = save_model(model.cpu(), out, meta)
    save_ideal_digits(model_path.parent, ideal_digits(train_digits))
    return {
        **report,
        "model": result.config.model,
        "epochs": result.config.epochs,
        "n_train": len(train_digits),
        "n_valid": len(valid_digits),
        "fit_seconds": round(result.fit_seconds, 4),
        "history": result.history,
        "model_path": str(model_path),
        "config": asdict(result.config),
        "classes": list(train_digits.classes),
        "threads": torch.get_num_threads(),
        "device": result.config.device,
        "world_size": dist_env.world_size,
        "weights_sha256": fingerprint,
        "compile_seconds": _compile_seconds(result.learner),
        **facts,
    }


def _compile_seconds(learner: Learner) -> float | None:
    """Seconds of the batches that compiled (each new batch shape and mode); None without --compile."""
    compiler = getattr(learner, "compiler", None)
    return round(compiler.compile_seconds, 4) if compiler is not None else None
