"""The `digitlab` command: one sub-command module each, errors as one line and exit code 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from functools import partial
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.startup import Startup

# The sub-commands, in the order of `digitlab --help`. Each builds its parser without importing torch,
# rich or matplotlib (they load when the command runs), so `--help` answers in a fraction of a second.
COMMAND_MODULES = (
    "data_cmd",
    "baseline_cmd",
    "show_cmd",
    "train_cmd",
    "evaluate_cmd",
    "demo_cmd",
    "report_cmd",
    "explain_cmd",
    "predict_cmd",
    "serve_cmd",
    "exercises_cmd",
)


def commands() -> tuple[ModuleType, ...]:
    import importlib

    return tuple(importlib.import_module(f"{__name__}.{name}") for name in COMMAND_MODULES)


DESCRIPTION = """\
digitlab: train and understand handwritten-digit classifiers from first principles
(fastbook chapter 4, "Under the Hood: Training a Digit Classifier").

examples:
  digitlab data list                         the named datasets and whether they are cached
  digitlab baseline                          pixel similarity on 3s and 7s (the chapter's first model)
  digitlab baseline --data mnist --metric rmse --valid ../shared/data/mnist-test
  digitlab show mnist_sample:0               one digit as a shaded table of pixel values
  digitlab train --model simple_net          SGD from scratch: linear, simple_net or cnn
  digitlab evaluate runs/cnn10 --data mnist  accuracy, per class, confusion matrix

Data is cached in $DIGITLAB_HOME (default ~/.cache/digitlab). DIGITLAB_OFFLINE=1 skips downloads
and uses the offline mirror; DIGITLAB_DOWNLOAD_BASE=URL fetches the canonical files from your own mirror.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="digitlab", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"digitlab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in commands():
        module.add_parser(subparsers)
    return parser


def given_options(argv: Sequence[str] | None) -> set[str]:
    """The options written on the command line (their dests), whatever their values: `--seed 42` is
    given though 42 is the default. The same parser, its defaults left out, reads argv again."""
    parser = build_parser()
    parsers = [parser]
    while parsers:
        for action in parsers.pop()._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers += action.choices.values()
            elif action.option_strings:
                action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv))) - {"command", "action", "run"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command: its exit code; any DigitlabError is one line and 2, a Ctrl-C (also while
    the command modules load) is one line and 130."""
    from ..core.startup import Startup

    clock = Startup()  # before torch loads: start-up is reported apart from training (train --json)
    try:
        code = _main(argv, clock)
    except KeyboardInterrupt:
        print("digitlab: interrupted", file=sys.stderr)
        code = 130
    if code == 130:  # interrupted, here or in a command that said where its checkpoint is
        _forget_the_interrupt()
    return code


def _main(argv: Sequence[str] | None, clock: Startup) -> int:
    from ..errors import DigitlabError
    from .common import Context

    parser = build_parser()  # loads no torch: --help, and a mistyped option, answer at once
    clock.mark("read the command")
    args = parser.parse_args(argv)
    args.options_given = partial(given_options, argv)  # read again only where asked (train --resume)
    if args.command is None:
        parser.print_help()
        return 2
    if (args.command, getattr(args, "action", None)) not in NO_TORCH:
        import torch  # noqa: F401  (timed on its own: the commands that run import it when they start)

        clock.mark("import torch")
    if args.command not in OWN_THREADS:
        _follow_the_load()
    try:
        code = args.run(args, Context.from_args(args, clock)) or 0
        sys.stdout.flush()  # here, not at exit: a closed pipe is then caught below
        return code
    except BrokenPipeError:  # `digitlab ... | head -1`: the reader has gone; say nothing
        return _closed_pipe()
    except (DigitlabError, OSError) as e:  # OSError: a full disk, no permission, a file in the way...
        if getattr(args, "debug", False):
            raise
        print(f"digitlab: error: {e if isinstance(e, DigitlabError) else _os_error(e)}", file=sys.stderr)
        return 2


# (command, action) that run no model and load no torch: they answer at once
NO_TORCH = {("data", "list"), ("exercises", "list"), ("exercises", "show")}

# Commands that choose torch's threads themselves: train (--threads, per epoch), serve (one a worker),
# exercises (one a child, several children at once); data runs no model
OWN_THREADS = {"train", "serve", "exercises", "data"}


def _follow_the_load() -> None:
    """torch's threads from the cores free now (digitlab.core.threads), before the command's work and
    every 2 s of its inference: on a busy machine torch's one thread per core stalls every parallel step."""
    import torch

    from ..artifacts.inference import BETWEEN_CHUNKS
    from ..core.threads import LoadFollower

    follow = LoadFollower(torch.set_num_threads)
    follow()  # now, before the command's work; then again between chunks of long inference
    BETWEEN_CHUNKS[:] = [follow]  # one follower for the process (tests call main many times)


# Exit status of a command whose output pipe closed: Python's documented recipe, and what rich (our
# tables) exits with on its own when the pipe closes under it
CLOSED_PIPE = 1


def _closed_pipe() -> int:
    """Quiet exit for a closed stdout: what is left to flush goes nowhere, so no message at exit."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return CLOSED_PIPE


def _os_error(error: OSError) -> str:
    """One line for an operating-system error: what failed, where, and for a full disk what to do."""
    import errno

    where = f"{error.filename}: " if error.filename is not None else ""
    what = error.strerror or str(error)
    hint = " (free some space, or choose another folder)" if error.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return f"{where}{what}{hint}"


if __name__ == "__main__":
    sys.exit(main())


def _forget_the_interrupt() -> None:
    """Let a handled Ctrl-C end the process with our exit code, 130.

    CPython remembers a KeyboardInterrupt that escaped code run from a string (`exec("...")`, as
    dataclasses and other modules do while they load) and, at exit, kills the process with SIGINT
    (exit status -2) even though the interrupt was handled here. Running an empty string resets that
    memory (it is reset at the start of every such run).
    """
    exec("")
