"""The child process that runs a learner's code: `python -m digitlab.exercises.child` (see sandbox.py).

It runs the submission's cells, then each exercise in turn, and reports on the results pipe, one
JSON object a line: {"event": "loaded"}, {"event": "start", "exercise": ...}, then the verdict with,
for a pass, what the learner's code computed on the probe's fresh inputs ("observation"). The parent
enforces the limits and judges the observation itself; a verdict that never comes is a crash or a
hang, named by the parent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import torch

from .feedback import explain_error
from .honesty import calls_digitlab
from .registry import CheckContext, Exercise, get
from .runner import FAILED, PASSED, Verdict, run_exercise
from .source import Cell, run_cells


def _send(results: TextIO, event: str, **fields: Any) -> None:
    sys.stdout.flush()  # what was printed so far belongs to the exercise before this event
    sys.stderr.flush()
    results.write(json.dumps({"event": event, **fields}) + "\n")
    results.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="digitlab.exercises.child")
    parser.add_argument("--cells", type=Path, required=True)
    parser.add_argument("--results-fd", type=int, required=True)
    parser.add_argument("--seeds", type=json.loads, default={}, help="{exercise: seed} for the probes' inputs")
    parser.add_argument("--data", type=Path)
    parser.add_argument("exercises", nargs="+")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # every learner gets the same CPU, and a class can be checked side by side
    results = os.fdopen(args.results_fd, "w", encoding="utf-8")
    cells = [Cell(c["filename"], c["code"]) for c in json.loads(args.cells.read_text(encoding="utf-8"))]
    submission = run_cells(cells)
    _send(results, "loaded", errors=submission.errors)
    for name in args.exercises:
        _send(results, "start", exercise=name)
        exercise, ctx = get(name), CheckContext(files=submission.files, data=args.data)
        with calls_digitlab(name, submission.files) as borrowed:
            verdict = run_exercise(exercise, submission, ctx)
            observation = _observe(exercise, submission.namespace.get(name), args.seeds.get(name, 0), verdict)
        if borrowed and verdict.status == PASSED:
            verdict = Verdict(name, FAILED, f"uses digitlab's solution (it calls {borrowed[0]}): write your own {name}")
        _send(results, "verdict", **verdict.to_dict(), observation=observation)
    return 0


def _observe(exercise: Exercise, obj: Any, seed: int, verdict: Verdict) -> Any:
    """What the learner's object computes on the probe's inputs for `seed` (only after a pass)."""
    if verdict.status != PASSED or exercise.probe is None:
        return None
    torch.manual_seed(seed)
    try:
        with torch.enable_grad():
            return exercise.probe.observe(obj, seed)
    except Exception as e:
        return {"error": explain_error(e, f"your {exercise.name}", ())}


if __name__ == "__main__":
    sys.exit(main())
