"""`digitlab explain`: the chapter's figures drawn from your data, on one page."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import Commands, Context, add_command, print_page

EXAMPLES = """\
  digitlab explain                                   the chapter's figures for 3s and 7s, in ./explain
  digitlab explain --data ~/my_digits --out figures  the same for your own digits
  digitlab explain --index 5 --json                  take validation digit #5 apart; the files as JSON
"""


def add_parser(commands: Commands) -> None:
    parser = add_command(commands, "explain", "the chapter's figures drawn from your data", EXAMPLES, run)
    parser.add_argument("--data", default="mnist_sample", help="dataset name or path (default: mnist_sample)")
    parser.add_argument("--out", type=Path, default=Path("explain"), help="folder for the PNGs and explain.html")
    parser.add_argument(
        "--index",
        type=int,
        help="which validation digit to take apart (default: the first the baseline classifies right)",
    )


def run(args: argparse.Namespace, ctx: Context) -> int:
    from ..pages.explain import write_explain  # matplotlib loads with the command that draws (start-up)

    page = write_explain(args.data, args.out, ctx.settings, ctx.log, args.index)
    return print_page(args, page)
