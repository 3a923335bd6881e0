"""Running a learner's code in a child process with limits, and judging what it reports here.

Each submission runs in `python -m digitlab.exercises.child`, in a bubblewrap sandbox (isolation.py)
unless told otherwise, with a memory limit (RLIMIT_AS), a CPU-time backstop (RLIMIT_CPU), a cap on
file sizes and processes, no core files, and a time limit per exercise kept by this process. Output
is read as it comes and capped: code that prints without end is stopped. When the child hangs,
crashes or is stopped on one exercise, that exercise fails with the reason in words and a fresh
child goes on with the rest.

Nothing the child says is taken on trust: it runs the learner's code, so it can say anything. A
"passed" counts only when the child also sends what the learner's code computed on inputs drawn
here from a fresh random seed, and this process, with the book's own code, finds it right
(probes.py); a line on the results pipe that is not a well-formed report for the exercise under way
stops the child. Without the sandbox (--unsafe) the code runs as the user who checks it.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import secrets
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

from .honesty import digitlab_solutions
from .isolation import CODE, DATA, PACKAGE_ROOT, sandbox_command, sandbox_environment
from .registry import get
from .runner import FAILED, MISSING, PASSED, Verdict
from .source import Cell

MiB = 2**20
MAX_EVENT = 8 * MiB  # bytes of one line on the results pipe (the ten-digit predictions are ~10 kB)
MAX_FEEDBACK = 4000  # characters of a verdict's feedback kept from the child


@dataclass(frozen=True)
class Limits:
    seconds: float = 10.0  # per exercise (an exercise that needs longer, like train_mnist, keeps its own)
    load_seconds: float = 60.0  # for running the submission's cells before any check
    memory: int = 2048 * MiB  # address space of the child (torch itself takes ~1 GiB of it)
    output: int = 1 * MiB  # printed bytes after which the child is stopped
    keep: int = 2000  # characters of printed output kept per exercise for feedback and the report
    processes: int = 64  # processes and threads the child may add to those its user runs already
    isolate: bool = True  # in a bubblewrap sandbox (isolation.py); False: as the user who checks


@dataclass
class _Run:
    """The state of one child: what it is doing now and what it has reported."""

    names: list[str]
    seeds: dict[str, int]
    phase: str = "loading"  # loading (the learner's cells run) | between (exercises) | exercise
    current: str = ""  # the exercise being checked, in phase "exercise"
    verdicts: list[Verdict] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    printed: int = 0
    output: bytearray = field(default_factory=bytearray)
    pending: bytes = b""
    reason: str = ""  # why the child was stopped or ended early


class _Tampered(Exception):
    """The results pipe carried something that is not the child's report on the exercise under way."""


def check_cells(
    cells: list[Cell], names: list[str], limits: Limits = Limits(), data: Path | None = None,
    judges: dict[str, Callable[[Verdict], Verdict]] | None = None,
) -> list[Verdict]:  # fmt: skip
    """One verdict per name, in order, whatever the learner's code does."""
    verdicts = {  # imported from digitlab, as the source says: nothing to run
        name: Verdict(name, FAILED, f"uses digitlab's solution ({origin}): write your own {name}")
        for name, origin in digitlab_solutions(cells, names).items()
    }
    remaining = [n for n in names if n not in verdicts]
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
                why, output = (
                    f"running your code failed before any check: it {run.reason}",
                    _text(run.output, run.printed),
                )
                for n in remaining:
                    verdicts[n] = Verdict(n, FAILED, why, output=output)
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
    if os.getuid() != 0:  # counted per user (root is not limited): what runs already, plus the child's share
        nproc = _user_processes() + limits.processes
        wanted.append((resource.RLIMIT_NPROC, nproc, nproc))

    def apply() -> None:  # runs in the child between fork and exec
        for kind, soft, hard in wanted:
            with contextlib.suppress(ValueError, OSError):  # macOS refuses RLIMIT_AS: the time limits still hold
                resource.setrlimit(kind, (soft, hard))

    return apply


def _user_processes() -> int:
    """Threads of this user now (RLIMIT_NPROC counts threads); a generous guess where /proc cannot tell."""
    uid, count = os.getuid(), 0
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if entry.stat().st_uid == uid:
                count += len(os.listdir(entry / "task"))
    return count or 4096


def _limit(name: str, limits: Limits) -> float:
    return max(limits.seconds, get(name).seconds or 0.0)


def _environment(work: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {
        **os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "TMPDIR": str(work),
    }  # fmt: skip


def _command(work: Path, cells_file: Path, names: list[str], seeds: dict[str, int], data: Path | None,
             fd: int, limits: Limits) -> tuple[list[str], dict[str, str], Path]:  # fmt: skip
    """The child's command line, environment and working folder, sandboxed or not."""
    cells = CODE / cells_file.name if limits.isolate else cells_file
    command = [sys.executable, "-m", "digitlab.exercises.child", "--cells", str(cells)]
    command += ["--results-fd", str(fd), "--seeds", json.dumps(seeds)]
    command += [*(["--data", str(DATA / data.name if limits.isolate else data)] if data else []), *names]
    if not limits.isolate:
        return command, _environment(work), work
    env = sandbox_environment()  # bwrap's own (to find it on PATH), and the child's through --setenv
    return sandbox_command(command, work, [data] if data else [], env), env, work


def _run_child(work: Path, cells_file: Path, names: list[str], limits: Limits, data: Path | None) -> _Run:
    total = limits.load_seconds + sum(_limit(n, limits) for n in names)
    seeds = {n: secrets.randbits(31) for n in names}  # fresh inputs for the probes: no answer can be stored
    read_end, write_end = os.pipe()
    command, env, cwd = _command(work, cells_file, names, seeds, data, write_end, limits)
    proc = subprocess.Popen(
        command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, pass_fds=(write_end,), start_new_session=True,
        preexec_fn=_limit_child(limits, int(total) + 10),
    )  # fmt: skip
    os.close(write_end)
    run = _Run(names, seeds)
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
                    try:
                        _events(run, chunk)
                    except _Tampered as e:
                        return _stop(proc, run, f"wrote to the checker's results pipe ({e}): that is not allowed")
        if run.printed > limits.output:
            return _stop(proc, run, f"printed more than {limits.output // MiB} MiB (an endless loop that prints?)")
    code = proc.wait()
    if len(run.verdicts) < len(run.names):
        if limits.isolate and code - 128 in {int(s) for s in signal.valid_signals()}:
            code = 128 - code  # bwrap exits with 128 + N where its child was killed by signal N
        _fail(run, _crash(code))


def _events(run: _Run, chunk: bytes) -> None:
    run.pending += chunk
    if len(run.pending) > MAX_EVENT:
        raise _Tampered(f"a line of over {MAX_EVENT // MiB} MiB")
    *lines, run.pending = run.pending.split(b"\n")
    for line in lines:
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: lists nested thousands deep
            raise _Tampered("a line that is not JSON") from None
        kind = event.pop("event", None) if isinstance(event, dict) else None
        if kind == "start" and run.phase == "between" and event.get("exercise") in run.names:
            if any(v.exercise == event["exercise"] for v in run.verdicts):
                raise _Tampered(f"{event['exercise']} checked twice")
            run.phase, run.current = "exercise", event["exercise"]
        elif kind == "verdict" and run.phase == "exercise" and event.get("exercise") == run.current:
            run.verdicts.append(_verdict(run, event))
            run.phase = "between"
        elif kind == "loaded" and run.phase == "loading":
            run.phase = "between"
        else:
            raise _Tampered(f"an event {str(kind)[:40]!r} where none was due")
        run.started, run.output, run.printed = time.monotonic(), bytearray(), 0


def _verdict(run: _Run, event: dict[str, Any]) -> Verdict:
    """The verdict, from the child's report where it can be checked here and from this process's own clock."""
    name, status, feedback = run.current, event.get("status"), event.get("feedback")
    if status not in (PASSED, FAILED, MISSING) or not isinstance(feedback, str):
        raise _Tampered("a verdict without a status and feedback")
    seconds, output = time.monotonic() - run.started, _text(run.output, run.printed)
    payload = event.get("payload") if name == "train_mnist" else None
    predictions = payload.get("predictions") if isinstance(payload, dict) else None
    if isinstance(predictions, list) and all(type(p) is int for p in predictions):
        payload = {"predictions": predictions}
    else:
        payload = {}
    verdict = Verdict(name, status, feedback[:MAX_FEEDBACK], seconds, output, payload)
    if status != PASSED:
        return verdict
    probe = get(name).probe
    if probe is None:  # train_mnist: its predictions are judged where the labels are (classroom.py)
        return verdict
    why = probe.disagrees(event.get("observation"), run.seeds[name])
    if why is None:
        return verdict
    return Verdict(name, FAILED, f"checked again on fresh inputs, your {name} {why}", seconds, output)


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
    """Words for how the child ended: a negative code -N is "killed by signal N"."""
    if code < 0:
        name = signal.Signals(-code).name
        words = {"SIGSEGV": "crashed Python (a segmentation fault)", "SIGXCPU": "used up its CPU time"}
        return words.get(name, f"was stopped by {name}")
    return f"ended the checker's process (exit code {code}): leave exit() and os._exit() out of code to be checked"
