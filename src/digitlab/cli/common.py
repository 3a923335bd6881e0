"""What every sub-command shares: common flags, settings, logging, JSON output."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

from ..config import Settings
from ..core.progress import Log, quiet_log, stderr_log
from ..core.startup import Startup


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
    startup: Startup = field(default_factory=Startup)  # the time before training, by phase (train --json)

    @classmethod
    def from_args(cls, args: argparse.Namespace, startup: Startup | None = None) -> Context:
        quiet = getattr(args, "quiet", False)
        return cls(Settings.from_env(), quiet_log if quiet else stderr_log, startup or Startup())


Run = Callable[[argparse.Namespace, Context], int]  # a sub-command: parsed arguments -> exit code

DEVICES = ("auto", "cpu", "cuda", "mps")  # --device: auto picks cuda, then mps, then cpu


def add_device_flag(parser: argparse.ArgumentParser, what: str) -> None:
    """`--device` for a command where a model runs (train, evaluate, predict, serve)."""
    parser.add_argument(
        "--device",
        default="cpu",
        choices=list(DEVICES),
        help=f"where {what} (default: cpu; auto picks cuda, then mps, then cpu)",
    )


def device_from_args(args: argparse.Namespace, log: Log, what: str) -> str:
    """The device `--device` names, resolved; `auto` says on stderr what it picked. One that is not
    here is a one-line error (DigitlabError)."""
    from ..train.device import resolve_device  # torch loads with the command, not with the parser

    device = resolve_device(args.device)
    if args.device == "auto":
        log(f"--device auto: {what} on {device}")
    return device


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
