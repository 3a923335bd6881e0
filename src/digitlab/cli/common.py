"""What every sub-command shares: common flags, settings, logging, JSON output."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from ..config import Settings
from ..progress import Log, quiet_log, stderr_log


def common_flags() -> argparse.ArgumentParser:
    """Flags accepted by every sub-command (after its name)."""
    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument("--json", action="store_true", help="print one machine-readable JSON object on stdout")
    flags.add_argument("--quiet", action="store_true", help="no status lines on stderr")
    flags.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    return flags


# What `parser.add_subparsers()` returns (argparse's class is generic only in its stubs: a string alias)
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_command(commands: Commands, name: str, help: str, examples: str, run: Run) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        name,
        help=help,
        description=f"{help}\n\nexamples:\n{examples}",
        parents=[common_flags()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(run=run)
    return parser


@dataclass(frozen=True)
class Context:
    settings: Settings
    log: Log  # status lines for people (stderr); never mixed into --json output

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Context:
        quiet = getattr(args, "quiet", False)
        return cls(Settings.from_env(), quiet_log if quiet else stderr_log)


Run = Callable[[argparse.Namespace, Context], int]  # a sub-command: parsed arguments -> exit code


def print_json(payload: dict[str, Any]) -> None:
    json.dump(payload, sys.stdout, indent=2)
    sys.stdout.write("\n")


def print_page(args: argparse.Namespace, page: Path) -> int:
    """Say which HTML page and figures were written (report, explain): a line, or JSON with --json."""
    figures = sorted(str(p) for p in page.parent.rglob("*.png"))
    if args.json:
        print_json({"html": str(page), "figures": figures})
    else:
        print(f"wrote {page} and {len(figures)} figures")
    return 0
