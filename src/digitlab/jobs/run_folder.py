"""A run folder that is never overwritten by accident, never half-written and never written twice at once.

`RunFolder(out)` is what `digitlab train --out OUT` writes through:
- OUT must be a new folder, an empty one or a digitlab run: a folder holding anything a run does not
  write (a user's documents, `.`) is refused, `--overwrite` or not, since replacing OUT deletes what is
  in it; so are a file, a symbolic link and `/`;
- OUT holding a run (model.json or model.safetensors) is refused unless `overwrite=True`;
- the run is written to the sibling `.OUT.partial` and renamed to OUT only when it is complete
  (`commit()`, after the report too): with `overwrite=True` the old run is replaced only then, in
  one atomic exchange of the two names on Linux (two renames elsewhere, finished on the next run
  if a kill falls between them), so a run that fails leaves the old one as it was and a reader of
  OUT sees the old run or the new one, never neither;
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

from ..artifacts.serialization import LINE_META, LINE_WEIGHTS, META, WEIGHTS
from ..core.durable import exchange, fsync_file, fsync_folder
from ..core.outputs import check_owned_folder, make_folder
from ..errors import DigitlabError

CHECKPOINT = "checkpoint"  # OUT/checkpoint: the model after the last finished epoch (and its training state)
# Put in the old run just before it is exchanged for the new one: after the exchange it marks the
# partial folder as the replaced run (to delete), not an interrupted run (to resume)
REPLACED = ".replaced"


# Everything a run folder may hold: what `train` writes (the model, its card, the sidecars of
# run/serialization, `--report`'s page and figures, `--checkpoints`, `--lr-find`'s curve) and the
# replacement marker. A folder with any other entry is not replaced: it is not only digitlab's.
RUN_ENTRIES = frozenset(
    {
        META,
        WEIGHTS,
        LINE_META,
        LINE_WEIGHTS,
        "top_losses.safetensors",
        "abstain.safetensors",
        "ideal_digits.safetensors",
        "report.html",
        "report",
        "lr_find.png",
        CHECKPOINT,
        REPLACED,
    }
)


def holds_run(folder: Path) -> bool:
    return any((folder / name).exists() for name in (META, WEIGHTS, LINE_META, LINE_WEIGHTS))


def check_run_place(final: Path, flag: str = "--out") -> None:
    """Refuse a run folder that replacing would harm: a file, a link, `/`, a folder of other files."""
    if not final.name:
        raise DigitlabError(f"{flag} {final}: a run needs a folder of its own, not the root folder")
    if final.is_symlink():
        raise DigitlabError(f"{flag} {final} is a symbolic link: give the folder itself, or a new folder")
    if final.exists() and not final.is_dir():
        raise DigitlabError(f"{flag} {final} is a file, not a run's folder")
    advice = "a run goes into a new or empty folder, or replaces a digitlab run (--overwrite), never over other files"
    check_owned_folder(final, flag, RUN_ENTRIES, "digitlab", advice)


class RunFolder:
    """Write a run to `final` through a locked temporary sibling; see the module's doc."""

    def __init__(self, final: Path, overwrite: bool = False, resume: bool = False) -> None:
        final = Path(os.path.normpath(final))  # "runs/x/." is runs/x
        self.final = final if final.name else final.absolute()  # "." and "..": named, to be checked
        name = self.final.name or "run"  # "/" (refused on entry)
        self.partial = self.final.parent / f".{name}.partial"
        self.old = self.final.parent / f".{name}.old"
        self.lock_path = self.final.parent / f".{name}.lock"
        self.overwrite, self.resume = overwrite, resume
        self._lock: IO[str] | None = None
        self.opened = False  # this process locked and checked the folder: its checkpoint is this run's
        self.committed = False

    @property
    def checkpoint(self) -> Path:
        """Where this run's checkpoints are written while it runs (inside the partial folder)."""
        return self.partial / CHECKPOINT

    def has_checkpoint(self) -> bool:
        """A checkpoint to resume from: the fit's saved state (the model card beside it is for `evaluate`)."""
        return self.checkpoint_epoch() is not None

    def checkpoint_epoch(self) -> int | None:
        """The epochs done in the checkpoint's fit state (the state, not the card: the two are written one
        after the other, and a full disk between them leaves the state one epoch behind)."""
        from ..train.resume import TRAIN_STATE, saved_epoch

        return saved_epoch(self.checkpoint / TRAIN_STATE)

    def __enter__(self) -> RunFolder:
        flag = "--resume" if self.resume else "--out"
        check_run_place(self.final, flag)
        make_folder(self.final.parent, flag)
        try:
            self._take_lock()
        except OSError as e:
            raise DigitlabError(f"{flag} {self.final}: cannot write in {self.final.parent} ({e.strerror})") from None
        try:
            self._recover()
            self._check()
        except BaseException:
            self._release()
            raise
        self.opened = True
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
        """Finish or undo a replacement that a kill interrupted."""
        if (self.partial / REPLACED).exists():  # exchanged, not yet deleted
            shutil.rmtree(self.partial)
        (self.final / REPLACED).unlink(missing_ok=True)  # marked, not yet exchanged: still the run
        if self.old.exists():  # between the two renames of the fallback
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
            marker = self.final / REPLACED
            marker.touch()
            fsync_folder(self.final)
            if exchange(self.partial, self.final):
                shutil.rmtree(self.partial)  # the old run, marked
            else:
                marker.unlink()
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
