"""`digitlab evaluate`: a saved model scored on a dataset's test (or valid) split."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import Commands, Context, add_command, add_device_flag, device_from_args, print_json

EXAMPLES = """\
  digitlab evaluate runs/cnn10 --data ../shared/data/mnist-test
  digitlab evaluate runs/cnn10 --data ../shared/data/mnist-test --tta
  digitlab evaluate runs/cnn10 --data ../shared/data/mnist-test --device auto   on the GPU if there is one
  digitlab evaluate runs/lin/model.json --data mnist_sample --json
  digitlab evaluate runs/cnn10/checkpoint --data mnist      the last epoch saved by --checkpoints
  digitlab evaluate runs/cnn10-mine --data my-digits        accuracy on your own corrected digits

Besides accuracy it reports how often the model would abstain on these digits ("not a digit",
"not sure": the false-reject rate, `abstain` in --json) and the accuracy of the answers it gives.
"""


def add_parser(commands: Commands) -> None:
    parser = add_command(
        commands, "evaluate", "accuracy, per-class accuracy and confusion matrix of a saved model", EXAMPLES, run
    )
    parser.add_argument("model_path", metavar="MODEL", type=Path, help="a run folder or its model.json/.safetensors")
    parser.add_argument("--data", default="mnist_sample", help="dataset name or path; its test/valid split is used")
    parser.add_argument(
        "--tta",
        action="store_true",
        help="test-time augmentation: average over the image and 4 one-pixel shifts (5x the work)",
    )
    add_device_flag(parser, "the model runs")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from ..data.digits import evaluation_split
    from ..data.loading import load_dataset
    from ..predict.abstain import rejection_report
    from ..predict.predictor import Predictor

    device = device_from_args(args, ctx.log, "evaluating")
    predictor = Predictor.load(args.model_path, device, tta=args.tta)  # a bad MODEL fails before any data is loaded
    dataset = load_dataset(args.data, ctx.settings, ctx.log)
    digits = evaluation_split(dataset)
    classes = predictor.classes
    reduced = digits.with_classes(classes)
    note = None
    if len(reduced) < len(digits):
        note = f"kept the classes the model knows ({', '.join(classes)}): {len(reduced):,} of {len(digits):,} images"
        ctx.log(note)
    found = predictor.predict(reduced.images, k=1)  # where it would abstain: these are all digits
    report = {
        **predictor.evaluate(reduced),
        "abstain": rejection_report(found.reasons or [], found.indices == reduced.labels),
        "tta": args.tta,
        "classes": list(classes),
        "model_path": str(args.model_path),
        "data": args.data,
        "reduced_to_model_classes": note,
        "device": device,
    }
    if args.json:
        print_json(report)
        return 0
    print_accuracy_table(report, f"{predictor.card.architecture.name} on {args.data}")
    print_abstention(report["abstain"], report["n_valid"])
    return 0


def print_abstention(abstain: dict[str, Any], n: int) -> None:
    """The false-reject rate: how often the model would say "not a digit" or "not sure" to these digits."""
    from rich.console import Console

    answered = abstain["accuracy_answered"]
    Console(highlight=False).print(
        f"abstains on {abstain['false_reject_rate']:.2%} of these {n:,} digits "
        f"({abstain['not_a_digit']:,} not a digit, {abstain['not_sure']:,} not sure); "
        f"accuracy of its answers {'-' if answered is None else f'{answered:.4f}'}"
    )


def print_accuracy_table(report: dict[str, Any], title: str) -> None:
    """Per-class accuracy and the confusion matrix as a table, then the overall accuracy (train, evaluate)."""
    from rich import box
    from rich.console import Console
    from rich.table import Column, Table

    console = Console(highlight=False)
    classes = list(report["per_class"])
    # Ten "pred N" headers do not fit 80 columns beside the accuracy, which rich then cut to "0.9…":
    # the predicted classes are headed by their names alone, said once in the caption
    count_width = max(len(f"{n:,}") for row in report["confusion"] for n in row)
    # (and a simple box, one space between columns: ten counts of 1,000 fit too)
    table = Table(
        Column("class", no_wrap=True, min_width=max(5, *map(len, classes))),
        Column("accuracy", no_wrap=True, min_width=8),
        *[Column(c, justify="right", no_wrap=True, min_width=count_width) for c in classes],
        title=title,
        caption="rows: the true class; columns: the predicted class",
        box=box.SIMPLE_HEAD,
        padding=(0, 0),
        pad_edge=False,
    )
    for i, name in enumerate(classes):
        accuracy = report["per_class"][name]
        table.add_row(name, "-" if accuracy is None else f"{accuracy:.4f}", *[f"{n:,}" for n in report["confusion"][i]])
    console.print(table)
    console.print(f"[bold]accuracy {report['accuracy']:.4f}[/bold] on {report['n_valid']:,} images")
