"""A run folder that is never overwritten by accident, never half-written and never written twice at once.

`RunFolder(out)` is what `digitlab train --out OUT` writes through:
- OUT holding a run (model.json or model.safetensors) is refused unless `overwrite=True`;
- the run is written to the sibling `.OUT.partial` and renamed to OUT only when it is complete
  (`commit()`, after the report too): with `overwrite=True` the old run is replaced only then, so a
  run that fails leaves the old one as it was;
- a lock (`.OUT.lock`, an fcntl lock the kernel releases when the process dies) stops a second
  process from writing the same folder: it gets a one-line error;
- a run that stops early keeps `.OUT.partial` when it holds a checkpoint (`--checkpoints`), for
  `digitlab train --resume OUT`; otherwise the partial folder is removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from types import TracebackType
from typing import IO

from ..durable import fsync_file, fsync_folder
from ..errors import DigitlabError
from .serialization import META, WEIGHTS

CHECKPOINT = "checkpoint"  # OUT/checkpoint: the model after the last finished epoch (and its training state)


def holds_run(folder: Path) -> bool:
    return (folder / META).exists() or (folder / WEIGHTS).exists()


class RunFolder:
    """Write a run to `final` through a locked temporary sibling; see the module's doc."""

    def __init__(self, final: Path, overwrite: bool = False, resume: bool = False) -> None:
        self.final = Path(final)
        name = self.final.name or "run"
        self.partial = self.final.with_name(f".{name}.partial")
        self.old = self.final.with_name(f".{name}.old")
        self.lock_path = self.final.with_name(f".{name}.lock")
        self.overwrite, self.resume = overwrite, resume
        self._lock: IO[str] | None = None
        self.committed = False

    @property
    def checkpoint(self) -> Path:
        """Where this run's checkpoints are written while it runs (inside the partial folder)."""
        return self.partial / CHECKPOINT

    def has_checkpoint(self) -> bool:
        return (self.checkpoint / META).exists()

    def __enter__(self) -> RunFolder:
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            self._recover()
            self._check()
        except BaseException:
            self._release()
            raise
        return self

    def _take_lock(self) -> None:
        import fcntl

        for _ in range(5):
            lock = open(self.lock_path, "a+")  # noqa: SIM115  # held until __exit__
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                lock.seek(0)
                holder = lock.read().strip()
                lock.close()
                raise DigitlabError(
                    f"{self.final} is being written by another process{f' (pid {holder})' if holder else ''}: "
                    "wait for it to finish or choose another --out"
                ) from None
            try:
                same = os.path.samestat(os.fstat(lock.fileno()), os.stat(self.lock_path))
            except FileNotFoundError:
                same = False
            if same:  # not a file its last holder removed while this process opened it
                lock.seek(0)
                lock.truncate()
                lock.write(str(os.getpid()))
                lock.flush()
                self._lock = lock
                return
            lock.close()
        raise DigitlabError(f"{self.final}: could not lock {self.lock_path}; try again")

    def _recover(self) -> None:
        """Finish or undo a replacement that a kill interrupted between its two renames."""
        if self.old.exists():
            if self.final.exists():
                shutil.rmtree(self.old)
            else:
                self.old.rename(self.final)

    def _check(self) -> None:
        if self.resume:
            if not self.has_checkpoint():
                hint = " (that run is complete)" if holds_run(self.final) else ""
                raise DigitlabError(
                    f"{self.final}: no interrupted run to resume (no checkpoint in {self.checkpoint}){hint}; "
                    "a run keeps one when trained with --checkpoints"
                )
            return
        if holds_run(self.final) and not self.overwrite:
            raise DigitlabError(f"{self.final} already holds a trained run: choose another --out, or add --overwrite")
        if self.partial.exists():
            if self.has_checkpoint() and not self.overwrite:
                raise DigitlabError(
                    f"{self.final}: an interrupted run's checkpoint is in {self.checkpoint}: continue it with "
                    f"`digitlab train --resume {self.final}`, or start again with --overwrite"
                )
            shutil.rmtree(self.partial)
        self.partial.mkdir()

    def commit(self) -> None:
        """Make the complete run visible as `final` (replacing an old run only now)."""
        for path in self.partial.rglob("*"):
            if path.is_file():
                fsync_file(path)
        fsync_folder(self.partial)
        if self.final.exists():
            self.final.rename(self.old)
            self.partial.rename(self.final)
            shutil.rmtree(self.old)
        else:
            self.partial.rename(self.final)
        fsync_folder(self.final.parent)
        self.committed = True

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        try:
            if not self.committed and self.partial.exists() and not self.has_checkpoint():
                shutil.rmtree(self.partial, ignore_errors=True)  # nothing in it is worth keeping
        finally:
            self._release()

    def _release(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self.lock_path.unlink()
            self._lock.close()
            self._lock = None
