"""Running checks in this process: one exercise against a learner's object, and the notebook API.

    from digitlab.exercises import check
    check("mnist_distance", mnist_distance)      # prints ✓ or ✗ with what is wrong; returns the Verdict
    check("mnist_distance")                      # the same, finding mnist_distance in your notebook

The command line (`digitlab exercises check FILE`) runs the same checks in a child process with a
time and memory limit (`sandbox.py`); here nothing is limited: it is your own code in your own kernel.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from .feedback import CheckerError, Missing, Wrong, explain_error
from .registry import CheckContext, Exercise, get
from .source import Submission

PASSED, FAILED, MISSING = "passed", "failed", "missing"


@dataclass
class Verdict:
    exercise: str
    status: str  # passed | failed | missing (the submission does not define the name)
    feedback: str  # why it passed, or what is wrong
    seconds: float = 0.0  # time taken by the check, the learner's code included
    output: str = ""  # what the learner's code printed while checked (capped)
    payload: dict[str, Any] = field(default_factory=dict)  # e.g. the full-MNIST predictions

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def line(self) -> str:
        mark = {PASSED: "✓", FAILED: "✗", MISSING: "-"}[self.status]
        return f"{mark} {self.exercise} ({self.seconds:.2f} s): {self.feedback}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __repr__(self) -> str:  # short: check() has printed the whole line already
        return f"Verdict({self.exercise}: {self.status})"


def run_exercise(exercise: Exercise, submission: Submission, ctx: CheckContext | None = None) -> Verdict:
    """Check the submission's object named like the exercise; every failure becomes a Verdict."""
    ctx = ctx or CheckContext(files=submission.files)
    obj = submission.namespace.get(exercise.name)
    if obj is None:
        why = f"; your code stopped earlier: {submission.errors[0]}" if submission.errors else ""
        return Verdict(exercise.name, MISSING, f"your code does not define {exercise.name}{why}")
    origin = library_origin(obj)
    if origin is not None:  # imported from digitlab (or its exercises): the library's work, not the learner's
        message = f"uses digitlab's solution ({origin}, digitlab's own): write your own {exercise.name}"
        return Verdict(exercise.name, FAILED, message)
    torch.manual_seed(0)  # a learner's random shuffling repeats from check to check
    start = time.perf_counter()
    try:
        with torch.enable_grad():  # a file that switched gradients off at the top level still gets checked
            message, status = exercise.check(obj, ctx), PASSED
    except Missing as e:
        message, status = str(e), MISSING
    except Wrong as e:
        message, status = str(e), FAILED
    except CheckerError:
        raise
    except Exception as e:
        message, status = explain_error(e, f"your {exercise.name}", ctx.files), FAILED
    except SystemExit as e:
        message, status = explain_error(e, f"your {exercise.name}", ctx.files), FAILED
    return Verdict(exercise.name, status, message, time.perf_counter() - start, payload=dict(ctx.payload))


def library_origin(obj: Any) -> str | None:
    """Where in digitlab `obj` was defined ("digitlab.train.losses.mnist_loss"), through functools.partial
    and decorators' __wrapped__; None for anything defined elsewhere (the learner's own code)."""
    for _ in range(10):  # a partial of a partial, a wrapper of a wrapper: a few levels at most
        inner = getattr(obj, "func", None) or getattr(obj, "__wrapped__", None)
        if inner is None or inner is obj:
            break
        obj = inner
    module = getattr(obj, "__module__", None)
    if isinstance(module, str) and (module == "digitlab" or module.startswith("digitlab.")):
        return f"{module}.{getattr(obj, '__qualname__', getattr(obj, '__name__', type(obj).__name__))}"
    return None


def check(name: str, obj: Any = None, quiet: bool = False) -> Verdict:
    """Check your `name` (a function or class); without `obj`, the one of that name in the caller's globals."""
    exercise = get(name)
    if obj is None:
        frame = inspect.currentframe()
        caller = frame.f_back if frame is not None else None
        namespace = dict(caller.f_globals) if caller is not None else {}
    else:
        namespace = {name: obj}
    code = getattr(obj, "__code__", None)
    files = (code.co_filename,) if code is not None else ()
    verdict = run_exercise(exercise, Submission(namespace, files=files), CheckContext(files=files))
    if not quiet:
        print(verdict.line())
    return verdict
