"""`digitlab report RUN_DIR`: one self-contained HTML page for a training run, from its folder alone."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import Commands, Context, add_command, print_page

EXAMPLES = """\
  digitlab report runs/lin                                      writes runs/lin/report.html
  digitlab train --model linear --out runs/lin --report         train, then the report
  digitlab report runs/cnn10 --json                             any run folder, moved or copied: no data needed
"""


def add_parser(commands: Commands) -> None:
    parser = add_command(
        commands, "report", "one self-contained HTML page (and PNGs) for a training run", EXAMPLES, run
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="a folder written by `digitlab train --out`")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from ..pages.report import write_report  # matplotlib loads with the command that draws (start-up)

    return print_page(args, write_report(args.run_dir))
