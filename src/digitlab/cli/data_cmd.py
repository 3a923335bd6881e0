"""`digitlab data list | get NAME | info PATH_OR_NAME | samples [FOLDER]`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import DigitlabError
from .common import Commands, Context, add_command, print_json

EXAMPLES = """\
  digitlab data list
  digitlab data get mnist_sample            download (or use the offline mirror) and cache it
  digitlab data get mnist --refresh         try the canonical download again after an offline run
  digitlab data info ~/data/mnist_png       counts per class and split of your own folder
  digitlab data info mnist.npz --json
  digitlab data samples                     pictures to try predict on, in ./samples (make demo writes them)
"""


def add_parser(commands: Commands) -> None:
    parser = add_command(commands, "data", "list, fetch and inspect datasets; write sample pictures", EXAMPLES, run)
    parser.add_argument("action", choices=["list", "get", "info", "samples"], help="what to do")
    parser.add_argument(
        "target", nargs="?", help="dataset name (get, info), path (info), or folder (samples; default ./samples)"
    )
    parser.add_argument(
        "--refresh", action="store_true", help="retry the canonical download even if the mirror is cached"
    )


def run(args: argparse.Namespace, ctx: Context) -> int:
    if args.action == "list":
        return _list(args, ctx)
    if args.action == "samples":
        return _samples(args, ctx)
    from rich.console import Console
    from rich.table import Table

    from ..data import sources
    from ..data.loading import load_dataset

    if not args.target:
        raise DigitlabError(f"`digitlab data {args.action}` needs a dataset name or path")
    dataset = load_dataset(args.target, ctx.settings, ctx.log, refresh=args.refresh)
    summary = dataset.summary()
    if args.target in sources.NAMED:
        summary["cache"] = sources.cache_paths(args.target, ctx.settings)
    if args.json:
        print_json(summary)
        return 0
    console = Console(highlight=False)
    console.print(f"[bold]{dataset.name}[/bold]  classes: {', '.join(dataset.classes)}")
    # a column per split, a row per class: fits 80 columns with ten classes (a row per split did not)
    test_only = summary["provenance"].get("splits") == "test only"  # a t10k-only folder: its one split is a test set
    splits = {("test" if test_only and name == "train" else name): info for name, info in summary["splits"].items()}
    table = Table("class", *splits)
    for c in dataset.classes:
        table.add_row(c, *[f"{info['per_class'][c]:,}" for info in splits.values()])
    table.add_row("all", *[f"{info['n']:,}" for info in splits.values()], style="bold")
    console.print(table)
    for key, value in summary["provenance"].items():
        console.print(f"  {key}: {', '.join(map(str, value)) if isinstance(value, list) else value}")
    for key, value in summary.get("cache", {}).items():
        console.print(f"  cache ({key}): {value}")
    return 0


def _list(args: argparse.Namespace, ctx: Context) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..data import catalogue  # not sources: listing loads no torch

    rows: list[dict[str, Any]] = [
        {
            "name": spec.name,
            "description": spec.description,
            "urls": [f.url for f in spec.files],
            "cached": catalogue.cache_state(spec, ctx.settings),
        }
        for spec in catalogue.NAMED.values()
    ]
    if args.json:
        print_json({"datasets": rows, "cache": str(ctx.settings.home)})
        return 0
    table = Table("name", "description", "cached")
    for row in rows:
        table.add_row(row["name"], row["description"], row["cached"])
    Console().print(table)
    print(f"cache: {ctx.settings.home}")
    return 0


def _samples(args: argparse.Namespace, ctx: Context) -> int:
    """Photos of held-out digits (the official test set's, or the mirror's holdout), a number and a letter."""
    from ..data.loading import load_dataset
    from ..data.samples import write_samples

    dataset = load_dataset("mnist", ctx.settings, ctx.log, refresh=args.refresh)
    assert dataset.valid is not None  # every named dataset has a test set or a holdout
    folder = Path(args.target or "samples")
    written = write_samples(folder, dataset.valid)
    if args.json:
        print_json({"folder": str(folder), "files": [str(path) for path in written]})
    else:
        names = _names(written, folder)
        ctx.log(f"{len(written)} pictures in {folder}/ from {dataset.name}'s held-out digits: {names}")
    return 0


def _names(paths: list[Path], folder: Path) -> str:
    """'seven.jpg, photos/0.jpg ... photos/9.jpg, meter.jpg': a folder's files named once."""
    names = [str(path.relative_to(folder)) for path in paths]
    photos = [name for name in names if "/" in name]
    rest = [name for name in names if "/" not in name]
    return ", ".join(rest[:1] + ([f"{photos[0]} ... {photos[-1]}"] if photos else []) + rest[1:])
