"""Running a learner's code in a child process with limits, in a temporary working folder.

Each submission runs in `python -m digitlab.exercises.child` started in a fresh temporary folder
(removed afterwards) with a memory limit (RLIMIT_AS), a CPU-time backstop (RLIMIT_CPU), no core
files, and a time limit per exercise kept by this process. Output is read as it comes and capped:
code that prints without end is stopped. When the child hangs, crashes or is stopped on one exercise,
that exercise fails with the reason in words and a fresh child goes on with the rest.

This is a guard against mistakes, not a security boundary: the code runs as the user who checks it.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .registry import get
from .runner import FAILED, Verdict
from .source import Cell

MiB = 2**20


@dataclass(frozen=True)
class Limits:
    seconds: float = 10.0  # per exercise (an exercise that needs longer, like train_mnist, keeps its own)
    load_seconds: float = 60.0  # for running the submission's cells before any check
    memory: int = 2048 * MiB  # address space of the child (torch itself takes ~1 GiB of it)
    output: int = 1 * MiB  # printed bytes after which the child is stopped
    keep: int = 2000  # characters of printed output kept per exercise for feedback and the report


@dataclass
class _Run:
    """The state of one child: what it is doing now and what it has reported."""

    names: list[str]
    phase: str = "loading"  # loading (the learner's cells run) | between (exercises) | exercise
    current: str = ""  # the exercise being checked, in phase "exercise"
    verdicts: list[Verdict] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    printed: int = 0
    output: bytearray = field(default_factory=bytearray)
    pending: bytes = b""
    reason: str = ""  # why the child was stopped or ended early


def check_cells(
    cells: list[Cell], names: list[str], limits: Limits = Limits(), data: Path | None = None,
    judges: dict[str, Callable[[Verdict], Verdict]] | None = None,
) -> list[Verdict]:  # fmt: skip
    """One verdict per name, in order, whatever the learner's code does."""
    verdicts: dict[str, Verdict] = {}
    remaining = list(names)
    with tempfile.TemporaryDirectory(prefix="digitlab-check-") as tmp:
        work = Path(tmp)
        cells_file = work / ".cells.json"
        cells_file.write_text(json.dumps([{"filename": c.filename, "code": c.code} for c in cells]), encoding="utf-8")
        while remaining:
            run = _run_child(work, cells_file, remaining, limits, data)
            for v in run.verdicts:
                judge = (judges or {}).get(v.exercise)
                verdicts[v.exercise] = judge(v) if judge is not None and v.passed else v
            remaining = [n for n in remaining if n not in verdicts]
            if remaining and run.phase == "loading":  # the cells themselves hung or crashed: nothing can be checked
                for n in remaining:
                    verdicts[n] = Verdict(n, FAILED, f"running your code failed before any check: it {run.reason}")
            elif remaining and not run.verdicts:  # no progress: never loop on a child that dies between checks
                verdicts[remaining[0]] = Verdict(
                    remaining[0], FAILED, f"the check did not start: your code {run.reason}"
                )
            remaining = [n for n in remaining if n not in verdicts]
            _clean(work, keep=cells_file)
    return [verdicts[n] for n in names]


def _clean(work: Path, keep: Path) -> None:
    """Empty the working folder between children (files the learner's code wrote), keeping the cells."""
    for p in work.iterdir():
        if p == keep:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def _limit_child(limits: Limits, cpu_seconds: int) -> Callable[[], None]:
    wanted = [
        (resource.RLIMIT_AS, limits.memory, limits.memory),
        (resource.RLIMIT_CPU, cpu_seconds, cpu_seconds + 5),
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_FSIZE, 256 * MiB, 256 * MiB),  # files the learner's code writes
    ]

    def apply() -> None:  # runs in the child between fork and exec
        for kind, soft, hard in wanted:
            with contextlib.suppress(ValueError, OSError):  # macOS refuses RLIMIT_AS: the time limits still hold
                resource.setrlimit(kind, (soft, hard))

    return apply


def _limit(name: str, limits: Limits) -> float:
    return max(limits.seconds, get(name).seconds or 0.0)


def _environment(work: Path) -> dict[str, str]:
    package_root = str(Path(__file__).resolve().parents[2])  # the folder holding digitlab/
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
    return {
        **os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "TMPDIR": str(work),
    }  # fmt: skip


def _run_child(work: Path, cells_file: Path, names: list[str], limits: Limits, data: Path | None) -> _Run:
    total = limits.load_seconds + sum(_limit(n, limits) for n in names)
    read_end, write_end = os.pipe()
    command = [sys.executable, "-m", "digitlab.exercises.child", "--cells", str(cells_file)]
    command += ["--results-fd", str(write_end), *(["--data", str(data)] if data else []), *names]
    proc = subprocess.Popen(
        command, cwd=work, env=_environment(work), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, pass_fds=(write_end,), start_new_session=True,
        preexec_fn=_limit_child(limits, int(total) + 10),
    )  # fmt: skip
    os.close(write_end)
    run = _Run(names)
    try:
        _watch(proc, read_end, run, limits)
    finally:
        os.close(read_end)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    return run


def _watch(proc: subprocess.Popen[bytes], results: int, run: _Run, limits: Limits) -> None:
    assert proc.stdout is not None
    out = proc.stdout.fileno()
    os.set_blocking(out, False)
    selector = selectors.DefaultSelector()
    selector.register(out, selectors.EVENT_READ)
    selector.register(results, selectors.EVENT_READ)
    open_fds = {out, results}
    while open_fds:
        limit = limits.load_seconds if run.phase == "loading" else limits.seconds
        if run.phase == "exercise":
            limit = _limit(run.current, limits)
        left = run.started + limit - time.monotonic()
        if left <= 0:
            return _stop(proc, run, f"took longer than {limit:.0f} s (an endless loop, or waiting for input?)")
        ready = {key.fd for key, _ in selector.select(timeout=min(left, 0.5))}
        for fd in (out, results):  # printed output first: it belongs to the exercise reported after it
            if fd in ready and fd in open_fds:
                chunk = os.read(fd, 65536)
                if not chunk:
                    selector.unregister(fd)
                    open_fds.discard(fd)
                elif fd == out:
                    run.printed += len(chunk)
                    run.output += chunk[: max(0, limits.keep - len(run.output))]
                else:
                    _events(run, chunk)
        if run.printed > limits.output:
            return _stop(proc, run, f"printed more than {limits.output // MiB} MiB (an endless loop that prints?)")
    code = proc.wait()
    if len(run.verdicts) < len(run.names):
        _fail(run, _crash(code))


def _events(run: _Run, chunk: bytes) -> None:
    run.pending += chunk
    *lines, run.pending = run.pending.split(b"\n")
    for line in lines:
        event: dict[str, Any] = json.loads(line)
        kind = event.pop("event")
        if kind == "start":
            run.phase, run.current = "exercise", event["exercise"]
        elif kind == "verdict":
            run.verdicts.append(Verdict(**{**event, "output": _text(run.output, run.printed)}))
            run.phase = "between"
        else:  # loaded: the cells ran
            run.phase = "between"
        run.started, run.output, run.printed = time.monotonic(), bytearray(), 0


def _text(output: bytearray, printed: int) -> str:
    text = output.decode("utf-8", "replace")
    return text + (f"\n... ({printed - len(output):,} more bytes)" if printed > len(output) else "")


def _stop(proc: subprocess.Popen[bytes], run: _Run, reason: str) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    _fail(run, reason)


def _fail(run: _Run, reason: str) -> None:
    """The exercise under way fails with `reason` (while the cells ran, the caller fails them all)."""
    run.reason = reason
    if run.phase == "exercise":
        elapsed = time.monotonic() - run.started
        output = _text(run.output, run.printed)
        run.verdicts.append(Verdict(run.current, FAILED, f"your {run.current} {reason}", elapsed, output))


def _crash(code: int) -> str:
    if code < 0:
        name = signal.Signals(-code).name
        words = {"SIGSEGV": "crashed Python (a segmentation fault)", "SIGXCPU": "used up its CPU time"}
        return words.get(name, f"was stopped by {name}")
    return f"ended the checker's process (exit code {code}): leave exit() and os._exit() out of code to be checked"
