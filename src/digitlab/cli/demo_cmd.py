"""`digitlab demo`: the chapter's progression on one dataset, in one comparison table."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from .common import Commands, Context, add_command, print_json

EXAMPLES = """\
  digitlab demo                                        3s and 7s: pixel similarity -> linear -> simple_net -> cnn
  digitlab demo --valid ../shared/data/mnist-test      the same, scored on the official test set's 3s and 7s
  digitlab demo --models linear,cnn --json
"""

BOOK = {
    "pixel_similarity": 0.9511,
    "linear": 0.968,
    "simple_net": 0.9828,
    "cnn": 0.997,
}  # fastbook ch. 4 (resnet18 for cnn)


def add_parser(commands: Commands) -> None:
    parser = add_command(
        commands, "demo", "the chapter's models one after another, compared in one table", EXAMPLES, run
    )
    parser.add_argument("--data", default="mnist_sample", help="dataset name or path (default: mnist_sample)")
    parser.add_argument("--valid", help="validate on this dataset or path")
    parser.add_argument("--models", default="linear,simple_net,cnn", help="comma-separated models after the baseline")
    parser.add_argument("--out", type=Path, help="keep the trained models in this folder (default: a temporary one)")
    parser.add_argument("--overwrite", action="store_true", help="replace runs already in --out (else refused)")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..artifacts.metrics import accuracy_report
    from ..baseline import PixelSimilarity
    from ..data.loading import train_and_valid
    from ..jobs.run_folder import RunFolder
    from ..jobs.train_run import DataSource, train_run
    from ..train.config import TrainConfig
    from ..train.recipe import TrainJob

    rows = []
    dataset, valid, facts = train_and_valid(args.data, args.valid, ctx.settings, ctx.log)  # once, for every model
    source = DataSource(args.data, dataset.provenance, facts.get("valid"))
    started = time.perf_counter()
    baseline = PixelSimilarity.fit(dataset.train)
    report = accuracy_report(baseline.predict(valid.images), valid.labels, valid.classes)
    rows.append({"model": "pixel_similarity", "accuracy": report["accuracy"], "seconds": time.perf_counter() - started})
    with tempfile.TemporaryDirectory() as tmp:
        out_root = args.out or Path(tmp)
        for name in [m.strip() for m in args.models.split(",") if m.strip()]:
            ctx.log(f"training {name} ...")
            config = TrainConfig(model=name).resolved(len(dataset.train))
            # one line per model, not 200 epoch rows
            with RunFolder(out_root / name, overwrite=args.overwrite) as folder:  # as `train --out` writes a run
                result = train_run(TrainJob(config, dataset.train, valid, progress=False), folder.partial, source)
                folder.commit()
            accuracy = result.evaluation["accuracy"] if result.evaluation else None
            ctx.log(f"{name}: accuracy {accuracy:.4f} after {config.epochs} epochs, {result.fit_seconds:.2f} s")
            rows.append({"model": name, "accuracy": accuracy, "seconds": result.fit_seconds, "epochs": config.epochs})
    for row in rows:
        row["book"] = BOOK.get(row["model"])
    if args.json:
        print_json({"rows": rows, "n_train": len(dataset.train), "n_valid": len(valid), **facts})
        return 0
    table = Table(
        "model",
        "accuracy",
        "book",
        "train time",
        title=f"chapter 4 on {args.data}, validated on {len(valid):,} images ({facts['valid']})",
    )
    for row in rows:
        table.add_row(
            row["model"],
            f"{row['accuracy']:.4f}",
            f"{row['book']:.4f}" if row["book"] else "-",
            f"{row['seconds']:.2f} s",
        )
    Console(highlight=False).print(table)
    return 0
