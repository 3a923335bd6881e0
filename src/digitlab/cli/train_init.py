"""`digitlab train --data my-digits --init RUN`: a saved model fine-tuned on your corrections
(`digitlab.jobs.fine_tune`), and its accuracy before and after.

`train` (digitlab.cli.train_cmd's training of one run) is passed in, so this module does not import
the command that imports it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ..errors import DigitlabError
from .common import Context, device_from_args


def fine_tune(args: argparse.Namespace, ctx: Context, train: Callable[..., int]) -> int:
    """`digitlab train --data my-digits --init RUN`: RUN fine-tuned on the corrections, mixed with its own data."""
    from ..jobs.fine_tune import before_after, plan
    from ..jobs.run_folder import RunFolder
    from ..jobs.train_run import default_out_dir
    from ..predict.predictor import Predictor
    from ..train.config import given_in
    from ..train.distributed import DistEnv
    from ..train.recipe import TrainJob

    given = {"--valid": args.valid, "--checkpoints": args.checkpoints, "--lr-find": args.lr_find}
    for flag, value in given.items():
        if value:
            raise DigitlabError(
                f"--init fine-tunes in one go, validating on the model's own validation digits: drop {flag}"
            )
    if DistEnv.from_env().enabled:
        raise DigitlabError("--init fine-tunes in one process (not under torchrun)")
    overrides = {**given_in(args), "device": device_from_args(args, ctx.log, "fine-tuning")}
    fine = plan(args.init, args.data, ctx.settings, ctx.log, overrides)
    ctx.log(fine.describe())
    folder = RunFolder(args.out or default_out_dir(args.data, fine.config.model), overwrite=args.overwrite)
    valid = fine.init.card.data.valid if fine.init.card.data else None
    facts = {"data": args.data, "data_source": "corrections", "valid": valid}
    job = TrainJob(fine.config, fine.dataset.train, fine.valid, not args.quiet, init=fine.init)
    with folder:
        return train(
            args,
            ctx,
            job,
            fine.dataset.provenance,
            facts,
            folder,
            lambda result: before_after(fine, Predictor(result.learner.model, fine.init.card, fine.config.device)),
        )


def print_before_after(found: dict[str, Any], data: str) -> None:
    """Fine-tuning's accuracy before and after, on the personal digits and the original validation digits."""
    from rich.console import Console

    personal, valid = found["personal"], found["original_valid"]
    digits = "digit" if personal["n"] == 1 else "digits"
    Console(highlight=False).print(
        f"on the {personal['n']:,} {digits} of {data} (trained on): accuracy {personal['before']:.4f} before, "
        f"{personal['after']:.4f} after\non its {valid['n']:,} original validation digits: "
        f"{valid['before']:.4f} before, {valid['after']:.4f} after"
    )
