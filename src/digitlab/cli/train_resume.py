"""`digitlab train --resume RUN` and what an interrupted run says: where its checkpoint is, how to go on.

`train` (digitlab.cli.train_cmd's training of one run) is passed in, so this module does not import
the command that imports it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING

from ..errors import DigitlabError
from .common import Context

if TYPE_CHECKING:  # imported where used: `digitlab --help` does not load torch
    from ..jobs.run_folder import RunFolder
    from ..train.config import TrainConfig
    from ..train.distributed import DistEnv

RESUME_INFO = "resume.json"  # in RUN/checkpoint: what `--resume RUN` needs besides the fit's state


def write_resume_info(folder: RunFolder, args: argparse.Namespace, config: TrainConfig, n_train: int) -> None:
    folder.checkpoint.mkdir(parents=True, exist_ok=True)
    info = {"data": args.data, "valid": args.valid, "config": asdict(config), "n_train": n_train}
    (folder.checkpoint / RESUME_INFO).write_text(json.dumps(info, indent=2) + "\n")


# What `--resume RUN` takes from the run, not from its command line: given with it, they are refused
RUN_OPTIONS = ("data", "valid", "lr_find", "out", "overwrite", "init")  # and every setting (TrainConfig's flags)


def resume(args: argparse.Namespace, ctx: Context, train: Callable[..., int]) -> int:
    """`digitlab train --resume RUN`: the interrupted run's data and settings, from its last checkpoint on."""
    from ..jobs.run_folder import RunFolder
    from ..train.config import flag_names
    from ..train.distributed import DistEnv

    written = args.options_given()  # even with the default's value: --seed 42
    given = [name for name in (*RUN_OPTIONS[:2], *flag_names(), *RUN_OPTIONS[2:]) if name in written]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise DigitlabError(f"--resume continues the run with its own data and settings: drop {flags}")
    dist_env = DistEnv.from_env()
    if dist_env.enabled:
        raise DigitlabError("--resume runs in one process (not under torchrun)")
    folder = RunFolder(args.resume, resume=True)
    return telling_how_to_resume(folder, lambda: _resume_in(folder, args, ctx, dist_env, train))


def _resume_in(
    folder: RunFolder, args: argparse.Namespace, ctx: Context, dist_env: DistEnv, train: Callable[..., int]
) -> int:
    from ..data.loading import train_and_valid
    from ..train.config import TrainConfig
    from ..train.recipe import TrainJob
    from ..train.resume import TRAIN_STATE

    with folder:
        path = folder.checkpoint / RESUME_INFO
        try:
            info = json.loads(path.read_text())
            # a run saved before the CNN's recipe had marks and thicker pens trained without them: it goes on so
            config = TrainConfig.from_saved({"outliers": 0.0, "thicken": 0.0, **info["config"]})
            data, valid_spec, n_train = str(info["data"]), info["valid"], int(info["n_train"])
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise DigitlabError(f"{path}: cannot resume this run ({type(e).__name__}: {e})") from None
        epoch = folder.checkpoint_epoch()
        ctx.log(f"resuming {folder.final} after epoch {epoch} of {config.epochs} (checkpoint {folder.checkpoint})")
        dataset, valid, facts = train_and_valid(data, valid_spec, ctx.settings, ctx.log)
        ctx.startup.mark("load the data")
        if not config.is_resolved:
            raise DigitlabError(f"{path}: cannot resume this run (its settings are incomplete)")
        if len(dataset.train) != n_train:
            raise DigitlabError(
                f"{folder.final}: the data {data!r} has {len(dataset.train):,} training images now, "
                f"the run trained on {n_train:,}: it cannot be resumed"
            )
        args.data, args.valid = data, valid_spec  # what the report and the summary name
        job = TrainJob(
            config, dataset.train, valid, not args.quiet, folder.checkpoint, dist_env, folder.checkpoint / TRAIN_STATE
        )
        return train(args, ctx, job, dataset.provenance, facts, folder)


def telling_how_to_resume(folder: RunFolder | None, body: Callable[[], int]) -> int:
    """Run `body`; a Ctrl-C, a diverged loss or an error (a full disk) says where the last checkpoint is and
    how to continue; a Ctrl-C without checkpoints says that nothing was kept."""
    from ..train.callbacks import TrainingDiverged

    try:
        return body()
    except (KeyboardInterrupt, TrainingDiverged, DigitlabError) as e:
        if folder is None or not folder.opened:  # e.g. another process holds the folder: its checkpoint
            raise
        epoch = folder.checkpoint_epoch()
        if epoch is None:
            if isinstance(e, KeyboardInterrupt):
                why = (
                    "before its first epoch ended (a checkpoint is kept as each epoch ends)"
                    if folder.checkpoint.exists()  # --checkpoints was given
                    else "(train with --checkpoints to keep each epoch and continue later with --resume)"
                )
                print(f"digitlab: interrupted; nothing was saved to {folder.final} {why}", file=sys.stderr, flush=True)
                return 130
            raise
        where = (
            f"the last checkpoint (epoch {epoch}) is in {folder.checkpoint}; "
            f"continue with: digitlab train --resume {folder.final}"
        )
        if isinstance(e, KeyboardInterrupt):
            print(f"digitlab: interrupted; {where}", file=sys.stderr, flush=True)
            return 130
        raise DigitlabError(f"{e}; {where}") from None
