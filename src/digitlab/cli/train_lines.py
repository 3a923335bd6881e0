"""`digitlab train --model line-reader`: a reader of whole lines of digits, for `predict --number --lines`."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from ..core.defaults import LINE_READER
from ..errors import DigitlabError
from ..train.config import TrainConfig
from .common import Context, print_json

# what a line reader's run does not do (yet): said in one line rather than silently ignored
UNSUPPORTED = {
    "init": "--init (fine-tuning)",
    "resume": "--resume",
    "checkpoints": "--checkpoints",
    "lr_find": "--lr-find",
    "report": "--report",
    "tta": "--tta",
    "compile": "--compile",
    "outliers": "--outliers",
    "thicken": "--thicken",
    "photos": "--photos",
}


def train_lines(args: argparse.Namespace, ctx: Context, config: TrainConfig) -> int:
    """Train, score and save a line reader into --out (a RunFolder: never over a user's files)."""
    from ..data.lines import SPACED, TOUCHING
    from ..data.loading import train_and_valid
    from ..jobs.line_run import line_run
    from ..jobs.run_folder import RunFolder
    from ..jobs.train_run import DataSource, default_out_dir
    from ..train.line_recipe import LINES_PER_EPOCH, SCORED_LINES

    given = [flag for key, flag in UNSUPPORTED.items() if getattr(args, key, None)]
    if given:
        raise DigitlabError(f"{', '.join(given)}: not for a {LINE_READER} (yet); train it without")
    out = args.out or default_out_dir(args.data, config.model)
    folder = RunFolder(out, overwrite=args.overwrite)
    with folder:
        dataset, valid, facts = train_and_valid(args.data, args.valid, ctx.settings, ctx.log)
        ctx.startup.mark("load the data")
        config = config.resolved(len(dataset.train))
        ctx.log(
            f"training a {LINE_READER} on lines of 3-6 digits made from {len(dataset.train):,} training digits "
            f"({LINES_PER_EPOCH:,} new lines an epoch), validating on lines of {len(valid):,} others; "
            f"{config.epochs} epochs, lr {config.lr}, bs {config.bs}, seed {config.seed}, threads {config.threads}"
        )
        source = DataSource(args.data, dataset.provenance, facts.get("valid"))
        trained, weights = line_run(config, dataset.train, valid, folder.partial, source, not args.quiet)
        folder.commit()
    answer: dict[str, Any] = {
        "model": LINE_READER,
        "scores": trained.scores,
        "scored_lines": SCORED_LINES,
        "gaps": {"spaced": SPACED, "touching": TOUCHING},
        "epochs": trained.config.epochs,
        "n_train": len(dataset.train),
        "n_valid": len(valid),
        "fit_seconds": round(trained.fit_seconds, 4),
        "threads": trained.threads,
        "history": trained.history,
        "model_path": str(folder.final / weights.name),
        "config": asdict(trained.config),
        **facts,
    }
    if args.json:
        print_json(answer)
        return 0
    s = trained.scores
    print(
        f"4-digit lines of validation digits read exactly: {s['spaced']:.4f} spaced, {s['touching']:.4f} touching "
        f"({SCORED_LINES:,} each); trained in {trained.fit_seconds:.1f} s; saved {answer['model_path']}\n"
        f"use it beside a digit model: digitlab predict MODEL photo.jpg --number --lines {folder.final}"
    )
    return 0
