"""Start-up: the seconds a command spends before its first training step, phase by phase.

`digitlab train --json` reports them apart from training as `startup_seconds` (the sum) and
`startup` (each phase): importing torch, the command modules, loading the data, starting CUDA,
building the Learner (model, data on the device, optimizer). The clock starts when digitlab's
`main()` begins; the Python interpreter's own start (tens of milliseconds) comes before that.
"""

from __future__ import annotations

import time


class Startup:
    """A clock that splits the time before training into named phases, in the order they ran."""

    def __init__(self) -> None:
        self.started = self._last = time.perf_counter()
        self.phases: dict[str, float] = {}

    def mark(self, phase: str) -> None:
        """The time since the previous mark (or the start) was `phase` (added up if it ran before)."""
        now = time.perf_counter()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - self._last
        self._last = now

    def add(self, phases: dict[str, float]) -> None:
        """Phases timed elsewhere (the Learner's build, inside the training run), after the last mark."""
        for phase, seconds in phases.items():
            self.phases[phase] = self.phases.get(phase, 0.0) + seconds

    @property
    def seconds(self) -> float:
        return sum(self.phases.values())

    def as_json(self) -> dict[str, float]:
        return {phase: round(seconds, 4) for phase, seconds in self.phases.items()}
