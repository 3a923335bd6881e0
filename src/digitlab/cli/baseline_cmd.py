"""`digitlab baseline`: the pixel-similarity model, scored per class."""

from __future__ import annotations

import argparse
import time

from ..core.defaults import METRICS
from .common import Commands, Context, add_command, print_json

EXAMPLES = """\
  digitlab baseline                                    3s vs 7s, L1 distance to the ideal 3 and 7
  digitlab baseline --valid ../shared/data/mnist-test  the official test set's 3s and 7s (book: 0.9511)
  digitlab baseline --data mnist --metric rmse         all 10 digits, nearest ideal digit by RMSE
  digitlab baseline --data ~/my_digits --json          your own folder of digits, <label>/*.png
"""


def add_parser(commands: Commands) -> None:
    parser = add_command(
        commands, "baseline", "pixel similarity: predict the nearest ideal (mean) digit", EXAMPLES, run
    )
    parser.add_argument("--data", default="mnist_sample", help="dataset name or path (default: mnist_sample)")
    parser.add_argument("--valid", help="validate on this dataset or path instead (its test split if it has one)")
    parser.add_argument(
        "--metric", choices=METRICS, default="l1", help="l1: mean absolute difference; rmse: root mean squared error"
    )


def run(args: argparse.Namespace, ctx: Context) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..artifacts.metrics import accuracy_report
    from ..baseline import PixelSimilarity
    from ..data.loading import train_and_valid

    dataset, valid, facts = train_and_valid(args.data, args.valid, ctx.settings, ctx.log)
    started = time.perf_counter()
    model = PixelSimilarity.fit(dataset.train, args.metric)
    report = accuracy_report(model.predict(valid.images), valid.labels, valid.classes)
    seconds = time.perf_counter() - started
    result = {
        **report,
        "metric": args.metric,
        "model": "pixel_similarity",
        "classes": list(valid.classes),
        "n_train": len(dataset.train),
        **facts,
        "seconds": round(seconds, 4),
    }
    if args.json:
        print_json(result)
        return 0
    table = Table("class", "valid images", "accuracy", title=f"pixel similarity ({args.metric}) on {args.data}")
    counts = valid.counts()
    for name, accuracy in report["per_class"].items():
        table.add_row(name, f"{counts[name]:,}", "-" if accuracy is None else f"{accuracy:.4f}")
    table.add_row("all", f"{len(valid):,}", f"{report['accuracy']:.4f}", style="bold")
    console = Console(highlight=False)
    console.print(table)
    console.print(
        f"ideal digits from {len(dataset.train):,} training images; validated on "
        f"{facts['valid']}; {seconds * 1000:.0f} ms"
    )
    return 0
