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
