"""Errors a user can act on.

Every failure caused by input (a bad file, a failed download, a wrong argument) is a
`DigitlabError`: the CLI prints its message on one line and exits with code 2, without a
traceback (`--debug` shows it). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class DigitlabError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class DataError(DigitlabError):
    """A dataset file or folder that cannot be read as digits (names the file and the problem)."""


class BrokenModelError(DigitlabError):
    """A model whose outputs are not numbers (NaN or infinite): broken weights or normalisation."""


class DownloadError(DigitlabError):
    """A download that failed or did not verify; nothing of it is kept for use."""


def check_range(flag: str, value: float | None, low: float, high: float, unit: str = "") -> None:
    """A number given for `flag` that is outside [low, high] (or NaN): one line, before any work, so no
    value reaches torch or the OS unbounded (a thread count of 5,000 crashed torch; a seed of 2**70
    overflowed it). None: not given."""
    if value is None:
        return
    if value != value or not low <= value <= high:  # value != value: NaN
        unit = f" {unit}" if unit else ""
        raise DigitlabError(f"{flag} must be between {_number(low)} and {_number(high)}{unit}, got {_number(value)}")


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"
