"""Progress for long work: a rich bar on a terminal, nothing on a pipe or in CI logs.

Library functions take an optional `on_progress(done, total)` callback; the CLI makes one
here. Status lines go to stderr so `--json` output on stdout stays one clean object.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Log = Callable[[str], None]
ProgressCallback = Callable[[int, "int | None"], None]


def stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def quiet_log(message: str) -> None:
    """A Log that drops messages (`--quiet`)."""


@contextmanager
def progress_bar(description: str, enabled: bool | None = None) -> Iterator[ProgressCallback]:
    """Yield an `on_progress(done, total)` callback that draws a bar when stderr is a terminal."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield lambda done, total: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update
