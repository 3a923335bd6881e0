"""How many CPU threads torch should use here and now: the cores this process may run on, less the
cores other processes keep busy.

Why: torch's CPU kernels run in OpenMP parallel regions that end at a barrier, so every step waits
for its slowest thread. With one thread per core and another busy process on one of the cores, that
thread gets half the core and every region waits for it: training a CNN took 5.5 s instead of 1.4 s
with one busy process beside it (and up to 117 s), where one thread took 1.9 s (BENCHMARKS.md). So a
thread count is chosen from what is free, not from what exists:

    usable cores = the affinity mask (taskset, a container's cpuset), capped by a cgroup CPU quota
    busy         = the cores' worth of CPU time that *other* processes used over a short sample
                   (/proc/stat's idle time on our cores, less this process's own CPU time)
    threads      = usable cores - busy, rounded, at least 1

The sample takes SAMPLE_SECONDS and is taken again between epochs (`ThreadPolicyCB`), so a machine
that gets busy mid-run is seen within an epoch. Off Linux (no /proc/stat) the usable cores are used.
Nothing here imports torch: `threads_choice()` is plain arithmetic on readings.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SAMPLE_SECONDS = 0.05  # long enough for ~5 scheduler ticks per core at 100 Hz, short beside an epoch
RESAMPLE_SECONDS = 2.0  # a sample costs ~0.05 s: taken again every 2 s of long work, at most ~2.5% of it


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    usable: int  # cores this process may run on (affinity, cgroup quota)
    busy: float | None  # cores' worth of CPU used by other processes during the sample; None: not measured
    fixed_by: str | None = None  # the setting that chose for us ("OMP_NUM_THREADS=1"), when one did

    @property
    def why(self) -> str:
        if self.fixed_by is not None:
            return f"{self.fixed_by} in the environment"
        if self.busy is None:
            return f"{self.usable} usable cores (load not measured here)"
        return f"{self.usable} usable cores, {self.busy:.1f} busy with other work"


def cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The CPU quota of this process's cgroup in cores (cgroup v2 cpu.max or v1 cfs), None if unlimited."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def affinity_cores() -> int:
    """The cores this process may run on: its affinity mask (taskset, a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def usable_cores() -> int:
    """The cores this process may use: its affinity mask, capped by a cgroup quota (rounded up)."""
    cores = affinity_cores()
    quota = cgroup_quota()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def busy_ticks(stat: str, cpus: set[int] | None) -> float:
    """The clock ticks spent not idle, summed over the given cpus' lines of /proc/stat (all if None)."""
    busy = 0.0
    for line in stat.splitlines():
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        if cpus is not None and int(name[3:]) not in cpus:
            continue
        ticks = [float(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
        busy += sum(ticks) - ticks[3] - ticks[4]  # less idle and iowait
    return busy


def others_busy(seconds: float = SAMPLE_SECONDS, stat: Path = Path("/proc/stat")) -> float | None:
    """The cores' worth of CPU time that other processes used on our cores over `seconds`; None where
    /proc/stat cannot be read."""
    try:
        cpus: set[int] | None = set(os.sched_getaffinity(0))
    except AttributeError:
        cpus = None
    try:
        busy0 = busy_ticks(stat.read_text(), cpus)
        own0, wall0 = time.process_time(), time.monotonic()
        time.sleep(seconds)
        busy1 = busy_ticks(stat.read_text(), cpus)
        own1, wall1 = time.process_time(), time.monotonic()
    except (OSError, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    busy_cores = (busy1 - busy0) / ticks / (wall1 - wall0)
    own_cores = (own1 - own0) / (wall1 - wall0)
    return max(0.0, busy_cores - own_cores)


def threads_choice(usable: int, busy: float | None) -> ThreadChoice:
    """The usable cores less the busy ones, rounded to the nearest whole core, at least 1."""
    if busy is None:
        return ThreadChoice(usable, usable, None)
    return ThreadChoice(max(1, min(usable, math.floor(usable - busy + 0.5))), usable, busy)


def fixed_threads(environ: dict[str, str] | None = None) -> int | None:
    """OMP_NUM_THREADS when it is set to a whole number >= 1: the user's own choice, which wins."""
    value = (os.environ if environ is None else environ).get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) >= 1 else None


def choose_threads(seconds: float = SAMPLE_SECONDS) -> ThreadChoice:
    """The thread count for this process now (see the module's doc); OMP_NUM_THREADS, if set, decides."""
    usable = usable_cores()
    fixed = fixed_threads()
    if fixed is not None:
        return ThreadChoice(min(fixed, usable), usable, None, f"OMP_NUM_THREADS={fixed}")
    return threads_choice(usable, others_busy(seconds))


class LoadFollower:
    """`apply(threads)` with the count `choose` gives, at most every `every` seconds: called between the
    chunks of long work (inference over many digits, photo after photo), it follows a load that comes
    or goes mid-run, as `ThreadPolicyCB` does between epochs. The first call samples at once."""

    def __init__(
        self,
        apply: Callable[[int], None],
        every: float = RESAMPLE_SECONDS,
        choose: Callable[[], ThreadChoice] = choose_threads,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.apply, self.every, self.choose, self.clock = apply, every, choose, clock
        self.last = -math.inf
        self.choices: list[ThreadChoice] = []

    def __call__(self) -> None:
        if self.clock() - self.last < self.every:
            return
        choice = self.choose()
        self.last = self.clock()  # after the sample: its 0.05 s is not counted as work
        if not self.choices or choice.threads != self.choices[-1].threads:
            self.apply(choice.threads)
            self.choices.append(choice)
