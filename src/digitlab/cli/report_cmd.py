"""`digitlab report RUN_DIR` and `digitlab explain`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..pages.explain import write_explain
from ..pages.report import write_report
from .common import Commands, Context, add_command, print_json

REPORT_EXAMPLES = """\
  digitlab report runs/mnist_sample-linear-20261122-101500     writes RUN_DIR/report.html
  digitlab train --model cnn --out runs/cnn --report            train, then the report
"""

EXPLAIN_EXAMPLES = """\
  digitlab explain                                   the chapter's figures for 3s and 7s, in ./explain
  digitlab explain --data ~/my_digits --out figures  the same for your own digits
"""


def add_parser(commands: Commands) -> None:
    report = add_command(
        commands, "report", "one self-contained HTML page (and PNGs) for a training run", REPORT_EXAMPLES, run_report
    )
    report.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="a folder written by `digitlab train --out`")
    explain = add_command(
        commands, "explain", "the chapter's figures drawn from your data", EXPLAIN_EXAMPLES, run_explain
    )
    explain.add_argument("--data", default="mnist_sample", help="dataset name or path (default: mnist_sample)")
    explain.add_argument("--out", type=Path, default=Path("explain"), help="folder for the PNGs and explain.html")
    explain.add_argument(
        "--index",
        type=int,
        help="which validation digit to take apart (default: the first the baseline classifies right)",
    )


def run_report(args: argparse.Namespace, ctx: Context) -> int:
    page = write_report(args.run_dir, ctx.settings, ctx.log)
    return _done(args, page)


def run_explain(args: argparse.Namespace, ctx: Context) -> int:
    page = write_explain(args.data, args.out, ctx.settings, ctx.log, args.index)
    return _done(args, page)


def _done(args: argparse.Namespace, page: Path) -> int:
    figures = sorted(str(p) for p in page.parent.rglob("*.png"))
    if args.json:
        print_json({"html": str(page), "figures": figures})
    else:
        print(f"wrote {page} and {len(figures)} figures")
    return 0
