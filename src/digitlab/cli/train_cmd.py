"""`digitlab train`: load the data once, train one run (`digitlab.jobs.train_run`), say what happened."""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.defaults import DEVICE_RECIPES, LINE_READER, MODEL_DEFAULTS
from ..core.outputs import check_new_file, make_folder
from ..core.progress import Log, quiet_log
from ..core.startup import Startup
from ..errors import DigitlabError
from ..train.config import TrainConfig, flag_specs, given_in
from .common import (
    Commands,
    Context,
    add_command,
    add_device_flag,
    device_from_args,
    print_json,
)

if TYPE_CHECKING:  # imported where used: `digitlab --help` does not load torch
    from ..data.digits import Digits
    from ..jobs.run_folder import RunFolder
    from ..jobs.train_run import RunResult
    from ..train.recipe import TrainJob

EXAMPLES = (
    """\
  digitlab train                                       the book's linear model on 3s and 7s
  digitlab train --model simple_net --valid ../shared/data/mnist-test
  digitlab train --model cnn --data mnist --out runs/cnn10
  digitlab train --model cnn --data mnist --out runs/cnn10 --checkpoints   then after a Ctrl-C:
  digitlab train --resume runs/cnn10                   on from the last epoch saved, to the same weights
  digitlab train --model simple_net --data mnist --lr 50   watch the divergence guard stop it
  digitlab train --model cnn --lr-find                 the learning-rate finder's suggestion
  digitlab train --model cnn --data mnist --device auto   on CUDA: the cuda recipe, the step as one CUDA graph
  digitlab train --model cnn --data mnist --device cuda --precision bf16 --compile   the GPU levers
  torchrun --nproc-per-node 2 -m digitlab train --model cnn --data mnist   two processes (DDP)
  digitlab train --data my-digits --init runs/cnn10 --out runs/cnn10-mine   learn your corrections
  digitlab train --model line-reader --data mnist --out runs/lines   a reader of whole lines (predict --lines)

defaults (the book's runs for linear and simple_net):
"""
    + "\n".join(f"  {name}: " + ", ".join(f"{k}={v}" for k, v in d.items()) for name, d in MODEL_DEFAULTS.items())
    + "\n"
    + "\n".join(
        f"  {name} on {device} (measured on an H100): " + ", ".join(f"{k}={v}" for k, v in d.items())
        for device, models in DEVICE_RECIPES.items()
        for name, d in models.items()
    )
    + """
  epochs for linear and simple_net: the book's number of SGD steps (20 and 40 epochs of
  MNIST_SAMPLE's 12,396 images in batches of 256), so more epochs on a smaller dataset"""
)


def add_parser(commands: Commands) -> None:
    parser = add_command(commands, "train", "train a linear model, simple_net or a CNN with SGD", EXAMPLES, run)
    parser.add_argument("--data", default="mnist_sample", help="dataset name or path (default: mnist_sample)")
    parser.add_argument("--valid", help="validate on this dataset or path (then all of --data is trained on)")
    for name, spec in flag_specs():  # the settings: TrainConfig's fields, with their help and checks
        kind = spec.get("type")
        if kind not in (None, int, float):
            spec["type"] = _parsed_by(kind)
        parser.add_argument(f"--{name}", **spec)
    add_device_flag(parser, "to train")
    _add_run_flags(parser)


def _parsed_by(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """A setting's parser whose ValueError argparse shows as it is (not "invalid value")."""

    def parsed(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parsed


def _add_run_flags(parser: argparse.ArgumentParser) -> None:
    """What the run does and where it goes: the lr finder, report, checkpoints, --out, resuming, fine-tuning."""
    parser.add_argument(
        "--lr-find",
        action="store_true",
        help="only run the learning-rate finder on this setup and print its suggestion "
        "(with --out, also draw OUT/lr_find.png)",
    )
    parser.add_argument("--report", action="store_true", help="also write OUT/report.html (see `digitlab report`)")
    parser.add_argument(
        "--checkpoints",
        action="store_true",
        help="save the model and the fit's state after every epoch to OUT/checkpoint (what --resume continues from)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="folder for model.safetensors + model.json: a new or empty folder, or a run to replace "
        "(--overwrite); a folder of other files is refused (default: runs/DATA-MODEL-TIME)",
    )
    parser.add_argument(
        "--resume",
        type=Path,
        metavar="RUN",
        help="continue the interrupted run RUN (trained with --checkpoints) from its last checkpoint, "
        "with the run's own data and settings; it ends as the uninterrupted run would have",
    )
    parser.add_argument(
        "--init",
        type=Path,
        metavar="RUN",
        help="fine-tune the saved model RUN on --data (your corrections, `digitlab predict --correct`), mixed "
        "with RUN's own training data so it does not forget; says the mix, and the accuracy before and after",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in --out, once the new run is complete (without it, such an --out is "
        "refused); never a folder that holds anything a run does not write",
    )


def run(args: argparse.Namespace, ctx: Context) -> int:
    from ..data.loading import train_and_valid
    from ..jobs.run_folder import RunFolder
    from ..jobs.train_run import default_out_dir
    from ..train.distributed import DistEnv
    from ..train.recipe import TrainJob
    from .train_init import fine_tune
    from .train_lines import train_lines
    from .train_resume import resume, telling_how_to_resume, write_resume_info

    if args.resume is not None:
        return resume(args, ctx, _train)
    if args.init is not None:
        return fine_tune(args, ctx, _train)
    config = TrainConfig(**given_in(args))  # checked here: before any data is read
    dist_env = DistEnv.from_env()  # set by torchrun; one process otherwise
    log = ctx.log if dist_env.is_main else quiet_log  # rank 0 speaks for everyone
    config = replace(config, device=device_from_args(args, log, "training"))
    if config.model == LINE_READER:
        if dist_env.enabled:  # every rank would write the same run folder
            raise DigitlabError(f"a {LINE_READER} trains in one process: run it without torchrun")
        return train_lines(args, ctx, config)
    if args.lr_find:
        if args.out is not None:  # before the data: never over a file the user did not say to replace
            make_folder(args.out, "--out")
            check_new_file(args.out / "lr_find.png", "--out", args.overwrite)
        dataset, valid, _ = train_and_valid(args.data, args.valid, ctx.settings, log)
        return _lr_find(args, config.resolved(len(dataset.train)), dataset.train, valid)
    # rank 0 writes the run; the other ranks of a torchrun job only train
    out = args.out or default_out_dir(args.data, config.model)
    folder = RunFolder(out, overwrite=args.overwrite) if dist_env.is_main else None

    def body() -> int:
        with folder or contextlib.nullcontext():
            dataset, valid, facts = train_and_valid(args.data, args.valid, ctx.settings, log)
            ctx.startup.mark("load the data")
            resolved = config.resolved(len(dataset.train))  # once: what is said below is what runs
            checkpoints = folder.checkpoint if folder is not None and args.checkpoints else None
            if folder is not None and checkpoints is not None:
                write_resume_info(folder, args, resolved, len(dataset.train))
            job = TrainJob(resolved, dataset.train, valid, not args.quiet, checkpoints, dist_env)
            return _train(args, ctx, job, dataset.provenance, facts, folder)

    return telling_how_to_resume(folder, body)


def _train(
    args: argparse.Namespace,
    ctx: Context,
    job: TrainJob,
    provenance: dict[str, Any],
    facts: dict[str, Any],
    folder: RunFolder | None,
    after: Callable[[RunResult], dict[str, Any]] | None = None,
) -> int:
    """Say what trains, train it (`digitlab.jobs.train_run`), then say what happened (rank 0).
    provenance: where the training digits came from (DigitDataset.provenance), for the card."""
    from ..jobs.train_run import DataSource, train_run

    _announce(job, ctx.log if job.dist_env.is_main else quiet_log)
    ctx.startup.mark("prepare the run")
    source = DataSource(args.data, provenance, facts.get("valid"))
    result = train_run(job, folder.partial if folder is not None else Path(tempfile.gettempdir()), source)
    ctx.startup.add(result.startup)
    if job.dist_env.enabled:
        print(f"rank {result.rank}: weights sha256 {result.weights_sha256}", file=sys.stderr, flush=True)
    if not result.is_main or result.model_path is None or folder is None:
        return 0  # rank 0 reports for everyone
    return _finish(args, ctx, result, facts, folder, after)


def _announce(job: TrainJob, log: Log) -> None:
    """One line: what trains on what, with which settings, where."""
    import torch

    config, train, valid, dist_env = job.config, job.train, job.valid, job.dist_env
    threads = config.threads if config.threads is not None else torch.get_num_threads()
    beside = [f"marks that are not digits (--outliers {config.outliers:g})"] if config.outliers else []
    beside += (
        [f"{config.thicken:.0%} of the digits drawn thicker (--thicken {config.thicken:g})"] if config.thicken else []
    )
    beside += (
        [f"{config.photos:.0%} of the digits also photographed (--photos {config.photos:g})"] if config.photos else []
    )
    log(
        f"training {config.model} on {len(train):,} images ({', '.join(train.classes)}), "
        f"validating on {len(valid):,}; {config.epochs} epochs, lr {config.lr}, bs {config.bs}, "
        f"seed {config.seed}, threads {threads}; on {config.device}, the {config.recipe} recipe"
        + (f"; with {' and '.join(beside)}" if beside else "")
    )
    if dist_env.enabled:
        log(f"distributed: {dist_env.world_size} processes, each on its shard of every epoch")


def _finish(
    args: argparse.Namespace,
    ctx: Context,
    result: RunResult,
    facts: dict[str, Any],
    folder: RunFolder,
    after: Callable[[RunResult], dict[str, Any]] | None,
) -> int:
    """The report (--report), the run made visible as --out, and what happened, as JSON or words."""
    from rich.console import Console

    from .evaluate_cmd import print_accuracy_table
    from .train_init import print_before_after

    assert result.model_path is not None  # rank 0's run is saved
    report = None
    if args.report:
        from ..pages.report import write_report  # matplotlib: only for --report (every train's start-up otherwise)

        report = write_report(folder.partial)
    folder.commit()  # the complete run (and its report) becomes visible as --out, in one rename
    result.model_path = folder.final / result.model_path.name
    answer = run_json(result, facts, ctx.startup)
    if after is not None:
        answer["fine_tune"] = after(result)
    if report is not None:
        answer["report"] = str(folder.final / report.relative_to(folder.partial))
    if args.json:
        print_json(answer)
        return 0
    print_accuracy_table(answer, f"{result.config.model} on {args.data}")
    if after is not None:
        print_before_after(answer["fine_tune"], args.data)
    compiled = f", of which {result.compile_seconds:.2f} s compiling" if result.compile_seconds is not None else ""
    ran = result.config
    graphs = f", {result.cuda_graphs}" if ran.device.startswith("cuda") else ""
    Console(highlight=False).print(
        f"trained in {result.fit_seconds:.2f} s (validation included{compiled}) on {ran.device} "
        f"({ran.recipe} recipe{graphs}), after {ctx.startup.seconds:.2f} s of start-up; "
        f"saved {result.model_path}" + (f"; report {answer['report']}" if args.report else "")
    )
    return 0


def run_json(result: RunResult, facts: dict[str, Any], startup: Startup | None = None) -> dict[str, Any]:
    """`digitlab train --json`: the evaluation, then what ran and how long, then where the data came from.

    startup: the command's clock (imports, data, CUDA, the Learner's build), reported apart from training.
    """
    assert result.evaluation is not None and result.card is not None  # rank 0
    config = result.config
    return {
        **result.evaluation,
        "model": config.model,
        "epochs": config.epochs,
        "n_train": result.card.data.n_train if result.card.data else None,
        "n_valid": result.evaluation["n_valid"],
        "fit_seconds": result.fit_seconds,
        "history": result.history,
        "model_path": str(result.model_path),
        "config": asdict(config),
        "classes": list(result.card.classes),
        "threads": result.threads,
        "threads_why": result.threads_why,
        "device": config.device,
        "recipe": config.recipe,
        "cuda_graphs": result.cuda_graphs,
        "startup_seconds": round(startup.seconds, 4) if startup is not None else None,
        "startup": startup.as_json() if startup is not None else None,
        "world_size": result.world_size,
        "weights_sha256": result.weights_sha256,
        "compile_seconds": result.compile_seconds,
        **facts,
    }


def _lr_find(args: argparse.Namespace, config: TrainConfig, train_digits: Digits, valid: Digits) -> int:
    from rich.console import Console

    from ..train.lr_finder import lr_find
    from ..train.recipe import build_learner

    # progress: photographing's lines (--photos: minutes); the fit's progress bar sits out the finder's trial
    setup = build_learner(config, train_digits, valid, progress=not args.quiet)
    found = lr_find(setup.learn)
    result: dict[str, Any] = {
        "model": setup.config.model,
        "suggestion": found.suggestion,
        "default_lr": setup.config.lr,
        "lrs": found.lrs,
        "losses": found.losses,
        "png": None,
    }
    if args.out is not None:  # the curve, when there is somewhere to put it
        from ..plots.training import plot_lr_find

        result["png"] = str(args.out / "lr_find.png")
        plot_lr_find(found.lrs, found.losses, found.suggestion, path=result["png"])
    if args.json:
        print_json(result)
        return 0
    Console(highlight=False).print(
        f"lr_find ({setup.config.model}, {len(found.lrs)} steps from {found.lrs[0]:.1e} to {found.lrs[-1]:.1e}): "
        f"suggested lr {found.suggestion:.3g} (steepest fall of the loss); the default is {setup.config.lr}"
        + (f"; curve in {result['png']}" if result["png"] else "")
    )
    return 0
