"""A time limit for a block of a test run (conftest.py gives every test's setup and call one)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


class TimeLimitExceeded(BaseException):  # not an Exception: a test's `except Exception` cannot swallow it
    """Raised in a test past its limit (SIGALRM)."""


@contextlib.contextmanager
def time_limit(seconds: float, what: str) -> Iterator[None]:
    """Raise TimeLimitExceeded in the main thread if the body runs past `seconds` (Unix; elsewhere no limit)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise TimeLimitExceeded(f"{what} ran past its {seconds:g} s limit (tests/conftest.py TIME_LIMITS)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
