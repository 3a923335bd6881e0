"""`digitlab train` and `digitlab evaluate`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..data.digits import evaluation_split
from ..data.loading import load_dataset, train_and_valid
from ..errors import DigitlabError
from ..models import MODELS
from ..pages.report import write_report
from ..run.serialization import load_model
from ..run.train_run import evaluate, train_run
from ..train.accelerate import PRECISIONS
from ..train.distributed import DistEnv
from ..train.lr_finder import lr_find
from ..train.recipe import MODEL_DEFAULTS, TrainConfig, build_learner
from .common import Commands, Context, add_command, print_json

TRAIN_EXAMPLES = (
    """\
  digitlab train                                       the book's linear model on 3s and 7s
  digitlab train --model simple_net --valid ../shared/data/mnist-test
  digitlab train --model cnn --data mnist --out runs/cnn10
  digitlab train --model simple_net --data mnist --lr 50   watch the divergence guard stop it
  digitlab train --model cnn --lr-find                 the learning-rate finder's suggestion
  digitlab train --model cnn --data mnist --device cuda --precision bf16 --compile   the GPU levers
  torchrun --nproc-per-node 2 -m digitlab train --model cnn --data mnist   two processes (DDP)

defaults (the book's runs for linear and simple_net):
"""
    + "\n".join(f"  {name}: " + ", ".join(f"{k}={v}" for k, v in d.items()) for name, d in MODEL_DEFAULTS.items())
    + """
  epochs for linear and simple_net: the book's number of SGD steps (20 and 40 epochs of
  MNIST_SAMPLE's 12,396 images in batches of 256), so more epochs on a smaller dataset"""
)

EVALUATE_EXAMPLES = """\
  digitlab evaluate runs/cnn10 --data ../shared/data/mnist-test
  digitlab evaluate runs/cnn10 --data ../shared/data/mnist-test --tta
  digitlab evaluate runs/sample-linear/model.json --data mnist_sample --json
"""


def add_parser(commands: Commands) -> None:
    parser = add_command(
        commands, "train", "train a linear model, simple_net or a CNN with SGD", TRAIN_EXAMPLES, run_train
    )
    parser.add_argument("--data", default="mnist_sample", help="dataset name or path (default: mnist_sample)")
    parser.add_argument("--valid", help="validate on this dataset or path (then all of --data is trained on)")
    parser.add_argument("--model", choices=list(MODELS), default="linear", help="which model (default: linear)")
    parser.add_argument("--epochs", type=int, help="passes over the training data (default: the model's; see below)")
    parser.add_argument("--lr", type=float, help="learning rate (default: the model's)")
    parser.add_argument("--bs", type=int, help="batch size (default: the model's)")
    parser.add_argument("--seed", type=int, default=42, help="seed for everything random (default: 42)")
    parser.add_argument(
        "--device",
        default="cpu",
        choices=["auto", "cpu", "cuda", "mps"],
        help="where to train (default: cpu; auto picks cuda, then mps, then cpu)",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument(
        "--precision",
        choices=list(PRECISIONS),
        default="fp32",
        help="bf16: forward pass under bfloat16 autocast, for CUDA tensor cores "
        "(many times slower on CPUs without bf16 instructions; default: fp32)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the model, for long CUDA runs: the compile (about a minute) is "
        "reported apart as compile_seconds; on a small CPU it does not pay (BENCHMARKS.md)",
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
    parser.add_argument("--checkpoints", action="store_true", help="save the model after every epoch to OUT/checkpoint")
    parser.add_argument(
        "--out", type=Path, help="folder for model.safetensors + model.json (default: runs/DATA-MODEL-TIME)"
    )
    evaluate_parser = add_command(
        commands,
        "evaluate",
        "accuracy, per-class accuracy and confusion matrix of a saved model",
        EVALUATE_EXAMPLES,
        run_evaluate,
    )
    evaluate_parser.add_argument(
        "model_path", metavar="MODEL", type=Path, help="a run folder or its model.json/.safetensors"
    )
    evaluate_parser.add_argument(
        "--data", default="mnist_sample", help="dataset name or path; its test/valid split is used"
    )
    evaluate_parser.add_argument(
        "--tta",
        action="store_true",
        help="test-time augmentation: average over the image and 4 one-pixel shifts (5x the work)",
    )


def run_train(args: argparse.Namespace, ctx: Context) -> int:
    if args.epochs is not None and args.epochs < 1:
        raise DigitlabError("--epochs must be at least 1")
    if args.bs is not None and args.bs < 1:
        raise DigitlabError("--bs must be at least 1")
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
    )
    if args.lr_find:
        return _lr_find(args, ctx, config)
    dist_env = DistEnv.from_env()  # set by torchrun; one process otherwise
    result = train_run(
        config,
        args.data,
        args.valid,
        args.out,
        ctx.settings,
        ctx.log,
        progress=not args.quiet,
        checkpoints=args.checkpoints,
        dist_env=dist_env,
    )
    if not dist_env.is_main:
        return 0  # rank 0 reports for everyone
    if args.report:
        result["report"] = str(write_report(Path(result["model_path"]).parent, ctx.settings, ctx.log))
    if args.json:
        print_json(result)
        return 0
    _print_report(result, f"{args.model} on {args.data}")
    compiled = (
        f", of which {result['compile_seconds']:.2f} s compiling" if result.get("compile_seconds") is not None else ""
    )
    Console(highlight=False).print(
        f"trained in {result['fit_seconds']:.2f} s (validation included{compiled}); "
        f"saved {result['model_path']}" + (f"; report {result['report']}" if args.report else "")
    )
    return 0


def _lr_find(args: argparse.Namespace, ctx: Context, config: TrainConfig) -> int:
    dataset, valid, _ = train_and_valid(args.data, args.valid, ctx.settings, ctx.log)
    learn, resolved, _, _ = build_learner(config, dataset.train, valid, progress=False)
    found = lr_find(learn)
    result: dict[str, Any] = {
        "model": resolved.model,
        "suggestion": found.suggestion,
        "default_lr": resolved.lr,
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
        f"lr_find ({resolved.model}, {len(found.lrs)} steps from {found.lrs[0]:.1e} to {found.lrs[-1]:.1e}): "
        f"suggested lr {found.suggestion:.3g} (steepest fall of the loss); the default is {resolved.lr}"
        + (f"; curve in {result['png']}" if result["png"] else "")
    )
    return 0


def run_evaluate(args: argparse.Namespace, ctx: Context) -> int:
    saved = load_model(args.model_path)
    dataset = load_dataset(args.data, ctx.settings, ctx.log)
    digits = evaluation_split(dataset)
    reduced = digits.with_classes(saved.classes)
    note = None
    if len(reduced) < len(digits):
        note = (
            f"kept the classes the model knows ({', '.join(saved.classes)}): {len(reduced):,} of {len(digits):,} images"
        )
        ctx.log(note)
    report = {
        **evaluate(saved, reduced, tta=args.tta),
        "tta": args.tta,
        "classes": list(saved.classes),
        "model_path": str(args.model_path),
        "data": args.data,
        "reduced_to_model_classes": note,
    }
    if args.json:
        print_json(report)
        return 0
    _print_report(report, f"{saved.meta['architecture']['name']} on {args.data}")
    return 0


def _print_report(report: dict[str, Any], title: str) -> None:
    console = Console(highlight=False)
    classes = list(report["per_class"])
    table = Table("class", "accuracy", *[f"pred {c}" for c in classes], title=title)
    for i, name in enumerate(classes):
        accuracy = report["per_class"][name]
        table.add_row(name, "-" if accuracy is None else f"{accuracy:.4f}", *[f"{n:,}" for n in report["confusion"][i]])
    console.print(table)
    console.print(f"[bold]accuracy {report['accuracy']:.4f}[/bold] on {report['n_valid']:,} images")
