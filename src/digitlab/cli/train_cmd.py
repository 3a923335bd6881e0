"""`digitlab train`: load the data once, train one run (`digitlab.run.train_run`), say what happened."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from ..data.digits import DigitDataset, Digits
from ..data.loading import train_and_valid
from ..errors import DigitlabError
from ..models import MODELS
from ..progress import quiet_log
from ..run.predictor import Predictor
from ..run.run_folder import RunFolder
from ..run.serialization import SavedModel
from ..run.train_run import DataSource, RunResult, default_out_dir, train_run
from ..startup import Startup
from ..train.accelerate import PRECISIONS, REFUSED_PRECISIONS
from ..train.callbacks import TrainingDiverged
from ..train.cuda_graph import check_mode
from ..train.distributed import DistEnv
from ..train.lr_finder import lr_find
from ..train.recipe import DEVICE_RECIPES, MODEL_DEFAULTS, TrainConfig, build_learner
from ..train.resume import TRAIN_STATE
from .common import Commands, Context, add_command, add_device_flag, device_from_args, print_json
from .evaluate_cmd import print_accuracy_table

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

defaults (the book's runs for linear and simple_net):
"""
    + "\n".join(f"  {name}: " + ", ".join(f"{k}={v}" for k, v in d.items()) for name, d in MODEL_DEFAULTS.items())
    + "\n"
    + "\n".join(
        f"  {name} on {device} (from the GPU issue's H100 measurement): " + ", ".join(f"{k}={v}" for k, v in d.items())
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
    parser.add_argument("--model", choices=list(MODELS), help="which model (default: linear; with --init, its own)")
    parser.add_argument("--epochs", type=int, help="passes over the training data (default: the model's; see below)")
    parser.add_argument("--lr", type=float, help="learning rate (default: the model's)")
    parser.add_argument("--bs", type=int, help="batch size (default: the model's)")
    parser.add_argument("--seed", type=int, default=42, help="seed for everything random (default: 42)")
    add_device_flag(parser, "to train")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument(
        "--precision",
        choices=[*PRECISIONS, *REFUSED_PRECISIONS],
        default="fp32",
        help="bf16: forward pass under bfloat16 autocast, for CUDA tensor cores "
        "(many times slower on CPUs without bf16 instructions; default: fp32); fp16 is refused (it needs loss scaling)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the model, for long CUDA runs: the compile (about a minute) is "
        "reported apart as compile_seconds; on a small CPU it does not pay (BENCHMARKS.md)",
    )
    parser.add_argument(
        "--cuda-graphs",
        choices=["auto", "on", "off"],
        default="auto",
        help="the training step (forward, loss, backward, SGD) as one CUDA graph, replayed: auto uses it on "
        "CUDA where it applies and says why not where it does not; on: that is an error; off: the eager step "
        "(default: auto)",
    )
    parser.add_argument(
        "--tta",
        action="store_true",
        help="validate (and report the final accuracy) with test-time augmentation: the mean "
        "over the image and its 4 one-pixel shifts",
    )
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
        "--out", type=Path, help="folder for model.safetensors + model.json (default: runs/DATA-MODEL-TIME)"
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
        help="replace the run already in --out, once the new run is complete (without it, such an --out is refused)",
    )


def check_args(args: argparse.Namespace) -> None:
    """Numbers that cannot train, refused in one line before any data is read."""
    if args.epochs is not None and args.epochs < 1:
        raise DigitlabError(f"--epochs must be at least 1, got {args.epochs}")
    if args.bs is not None and args.bs < 1:
        raise DigitlabError(f"--bs must be at least 1, got {args.bs}")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        raise DigitlabError(f"--lr must be a positive number, got {args.lr}")
    if args.threads is not None and args.threads < 1:
        raise DigitlabError(f"--threads must be at least 1, got {args.threads}")
    if args.precision in REFUSED_PRECISIONS:
        raise DigitlabError(f"--precision {args.precision}: {REFUSED_PRECISIONS[args.precision]}")


def run(args: argparse.Namespace, ctx: Context) -> int:
    check_args(args)
    if args.resume is not None:
        return _resume(args, ctx)
    if args.init is not None:
        return _fine_tune(args, ctx)
    args.model = args.model or "linear"
    config = TrainConfig(
        model=args.model,
        epochs=args.epochs,
        lr=args.lr,
        bs=args.bs,
        seed=args.seed,
        threads=args.threads,
        device=args.device,
        precision=args.precision,
        compile=args.compile,
        tta=args.tta,
        cuda_graphs=args.cuda_graphs,
    )
    dist_env = DistEnv.from_env()  # set by torchrun; one process otherwise
    log = ctx.log if dist_env.is_main else quiet_log  # rank 0 speaks for everyone
    config = replace(config, device=device_from_args(args, log, "training"))
    check_mode(config.cuda_graphs, config.device)  # before any data is read
    if args.lr_find:
        dataset, valid, _ = train_and_valid(args.data, args.valid, ctx.settings, log)
        return _lr_find(args, config.resolved(len(dataset.train)), dataset.train, valid)
    out = args.out or default_out_dir(args.data, config.model)
    # rank 0 writes the run; the other ranks of a torchrun job only train
    folder = RunFolder(out, overwrite=args.overwrite) if dist_env.is_main else None

    def body() -> int:
        with folder or contextlib.nullcontext():
            dataset, valid, facts = train_and_valid(args.data, args.valid, ctx.settings, log)
            ctx.startup.mark("load the data")
            resolved = config.resolved(len(dataset.train))  # once: what is said below is what runs
            if folder is not None and args.checkpoints:
                _write_resume_info(folder, args, resolved, len(dataset.train))
            return _train(args, ctx, resolved, dataset, valid, facts, folder, dist_env)

    return _telling_how_to_resume(folder, body)


RESUME_INFO = "resume.json"  # in RUN/checkpoint: what `--resume RUN` needs besides the fit's state


def _write_resume_info(folder: RunFolder, args: argparse.Namespace, config: TrainConfig, n_train: int) -> None:
    folder.checkpoint.mkdir(parents=True, exist_ok=True)
    info = {"data": args.data, "valid": args.valid, "config": asdict(config), "n_train": n_train}
    (folder.checkpoint / RESUME_INFO).write_text(json.dumps(info, indent=2) + "\n")


# What `--resume RUN` takes from the run, not from its command line: given with it, they are refused
RUN_SETTINGS = {
    "data": "mnist_sample",
    "valid": None,
    "model": None,
    "epochs": None,
    "lr": None,
    "bs": None,
    "seed": 42,
    "threads": None,
    "device": "cpu",
    "precision": "fp32",
    "compile": False,
    "tta": False,
    "cuda_graphs": "auto",
    "lr_find": False,
    "out": None,
    "overwrite": False,
    "init": None,
}


def _resume(args: argparse.Namespace, ctx: Context) -> int:
    """`digitlab train --resume RUN`: the interrupted run's data and settings, from its last checkpoint on."""
    given = [name for name, default in RUN_SETTINGS.items() if getattr(args, name) != default]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise DigitlabError(f"--resume continues the run with its own data and settings: drop {flags}")
    dist_env = DistEnv.from_env()
    if dist_env.enabled:
        raise DigitlabError("--resume runs in one process (not under torchrun)")
    folder = RunFolder(args.resume, resume=True)
    return _telling_how_to_resume(folder, lambda: _resume_in(folder, args, ctx, dist_env))


def _resume_in(folder: RunFolder, args: argparse.Namespace, ctx: Context, dist_env: DistEnv) -> int:
    with folder:
        path = folder.checkpoint / RESUME_INFO
        try:
            info = json.loads(path.read_text())
            config = TrainConfig(**info["config"])
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
        args.data, args.valid, args.model, args.checkpoints = data, valid_spec, config.model, True
        return _train(args, ctx, config, dataset, valid, facts, folder, dist_env, resume=True)


def _telling_how_to_resume(folder: RunFolder | None, body: Callable[[], int]) -> int:
    """Run `body`; a Ctrl-C, a diverged loss or an error (a full disk) says where the last checkpoint is and
    how to continue; a Ctrl-C without checkpoints says that nothing was kept."""
    try:
        return body()
    except (KeyboardInterrupt, TrainingDiverged, DigitlabError) as e:
        if folder is None or not folder.opened:  # e.g. another process holds the folder: its checkpoint
            raise
        epoch = folder.checkpoint_epoch()
        if epoch is None:
            if isinstance(e, KeyboardInterrupt):
                print(
                    f"digitlab: interrupted; nothing was saved to {folder.final} "
                    "(train with --checkpoints to keep each epoch and continue later with --resume)",
                    file=sys.stderr,
                    flush=True,
                )
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


def _train(
    args: argparse.Namespace,
    ctx: Context,
    config: TrainConfig,
    dataset: DigitDataset,
    valid: Digits,
    facts: dict[str, Any],
    folder: RunFolder | None,
    dist_env: DistEnv,
    resume: bool = False,
    init: SavedModel | None = None,
    after: Callable[[RunResult], dict[str, Any]] | None = None,
) -> int:
    log = ctx.log if dist_env.is_main else quiet_log
    train_digits = dataset.train
    log(
        f"training {config.model} on {len(train_digits):,} images ({', '.join(train_digits.classes)}), "
        f"validating on {len(valid):,}; {config.epochs} epochs, lr {config.lr}, bs {config.bs}, "
        f"seed {config.seed}, {torch.get_num_threads() if not config.threads else config.threads} threads; "
        f"on {config.device}, the {config.recipe} recipe"
    )
    if dist_env.enabled:
        log(f"distributed: {dist_env.world_size} processes, each on its shard of every epoch")
    ctx.startup.mark("prepare the run")
    result = train_run(
        config,
        train_digits,
        valid,
        folder.partial if folder is not None else Path(tempfile.gettempdir()),  # only rank 0 writes
        DataSource(args.data, dataset.provenance, facts.get("valid")),
        progress=not args.quiet,
        checkpoints=args.checkpoints,
        dist_env=dist_env,
        resume_from=folder.checkpoint / TRAIN_STATE if resume and folder is not None else None,
        init=init,
    )
    ctx.startup.add(result.startup)
    if dist_env.enabled:
        print(f"rank {result.rank}: weights sha256 {result.weights_sha256}", file=sys.stderr, flush=True)
    if not result.is_main or result.model_path is None or folder is None:
        return 0  # rank 0 reports for everyone
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
    print_accuracy_table(answer, f"{args.model} on {args.data}")
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


def _fine_tune(args: argparse.Namespace, ctx: Context) -> int:
    """`digitlab train --data my-digits --init RUN`: RUN fine-tuned on the corrections, mixed with its own data."""
    from ..run.fine_tune import before_after, plan

    given = {"--valid": args.valid, "--checkpoints": args.checkpoints, "--lr-find": args.lr_find}
    for flag, value in given.items():
        if value:
            raise DigitlabError(
                f"--init fine-tunes in one go, validating on the model's own validation digits: drop {flag}"
            )
    if DistEnv.from_env().enabled:
        raise DigitlabError("--init fine-tunes in one process (not under torchrun)")
    overrides = {
        "model": args.model,
        "epochs": args.epochs,
        "lr": args.lr,
        "bs": args.bs,
        "seed": args.seed,
        "threads": args.threads,
        "device": device_from_args(args, ctx.log, "fine-tuning"),
        "precision": args.precision,
        "compile": args.compile or None,
        "tta": args.tta or None,
    }
    fine = plan(args.init, args.data, ctx.settings, ctx.log, overrides)
    ctx.log(fine.describe())
    args.model = fine.config.model
    folder = RunFolder(args.out or default_out_dir(args.data, fine.config.model), overwrite=args.overwrite)
    facts = {
        "data": args.data,
        "data_source": "corrections",
        "valid": fine.init.card.data and fine.init.card.data.valid,
    }
    with folder:
        return _train(
            args,
            ctx,
            fine.config,
            fine.dataset,
            fine.valid,
            facts,
            folder,
            DistEnv(),
            init=fine.init,
            after=lambda result: before_after(
                fine, Predictor(result.learner.model, fine.init.card, fine.config.device)
            ),
        )


def print_before_after(found: dict[str, Any], data: str) -> None:
    """Fine-tuning's accuracy before and after, on the personal digits and the original validation digits."""
    personal, valid = found["personal"], found["original_valid"]
    digits = "digit" if personal["n"] == 1 else "digits"
    Console(highlight=False).print(
        f"on the {personal['n']:,} {digits} of {data} (trained on): accuracy {personal['before']:.4f} before, "
        f"{personal['after']:.4f} after\non its {valid['n']:,} original validation digits: "
        f"{valid['before']:.4f} before, {valid['after']:.4f} after"
    )


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
    setup = build_learner(config, train_digits, valid, progress=False)
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
