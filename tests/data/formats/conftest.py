"""Fixtures for the format readers' tests."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def _traced() -> Iterator[list[int]]:
    """Trace Python allocations in the block; on exit the list holds the peak, in bytes."""
    peak = [0]
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak[0] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


@pytest.fixture
def peak_memory():
    """`with peak_memory() as peak, pytest.raises(...): read(...)`, then `peak[0]` is the block's peak bytes."""
    return _traced
