"""Where a component of touching digits may be cut (`find_digits` asks; the model judges the readings):
at the columns of least ink near the even cuts into n parts (`cut`), or in 2 at the columns of
locally least ink (`valleys`, `parts`). Columns count from the component's box's left edge."""

from __future__ import annotations

import itertools

import numpy as np

CUT_TRIES = 5  # a cut in 2 is tried at up to this many columns of locally least ink

Box = tuple[int, int, int, int]  # y0, x0, y1, x1 in working pixels


def cut(own: np.ndarray, y0: int, x0: int, label: int, count: int) -> list[tuple[Box, int]]:
    """A component (its mask `own` in its box at y0, x0) cut into `count` parts at the columns of least ink
    near the even cuts; [] when a part would be empty."""
    w = own.shape[1]
    profile = own.sum(axis=0)  # (w,) ink pixels per column
    cuts = [0]
    for k in range(1, count):
        centre, reach = k * w / count, 0.3 * w / count
        lo, hi = int(centre - reach), int(centre + reach) + 1
        cuts.append(lo + int(np.argmin(profile[lo:hi])))
    cuts.append(w)
    return parts(own, y0, x0, label, cuts)


def valleys(profile: np.ndarray) -> list[int]:
    """Up to CUT_TRIES columns where a cut in 2 may fall: local minima of the ink per column (w,),
    smoothed over 3 columns, in the middle 80% of the width, least ink first."""
    w = len(profile)
    smooth = np.convolve(profile, np.ones(3) / 3, mode="same")
    inner = np.arange(max(1, int(0.1 * w)), min(w - 1, int(0.9 * w) + 1))
    minima = inner[(smooth[inner] <= smooth[inner - 1]) & (smooth[inner] <= smooth[inner + 1])]
    return [int(c) for c in minima[np.argsort(smooth[minima], kind="stable")][:CUT_TRIES]]


def parts(own: np.ndarray, y0: int, x0: int, label: int, cuts: list[int]) -> list[tuple[Box, int]]:
    """The component cut at columns `cuts` (0, ..., width): each part's ink box; [] when a part is empty."""
    found: list[tuple[Box, int]] = []
    for a, b in itertools.pairwise(cuts):
        rows, cols = np.nonzero(own[:, a:b])
        if not len(rows):
            return []
        top, left = y0 + int(rows.min()), x0 + a + int(cols.min())
        found.append(((top, left, y0 + int(rows.max()) + 1, x0 + a + int(cols.max()) + 1), label))
    return found
