"""`components`: 8-connected labelling by runs, checked against a plain flood fill."""

from __future__ import annotations

import numpy as np

from digitlab.reading.components import components, runs


def flood_fill(mask: np.ndarray) -> np.ndarray:
    """The textbook labelling, pixel by pixel (the reference; fine for small masks)."""
    h, w = mask.shape
    labels = np.zeros((h, w), np.int64)
    count = 0
    for y, x in zip(*np.nonzero(mask)):
        if labels[y, x]:
            continue
        count += 1
        stack = [(y, x)]
        labels[y, x] = count
        while stack:
            cy, cx = stack.pop()
            for ny in range(max(cy - 1, 0), min(cy + 2, h)):
                for nx in range(max(cx - 1, 0), min(cx + 2, w)):
                    if mask[ny, nx] and not labels[ny, nx]:
                        labels[ny, nx] = count
                        stack.append((ny, nx))
    return labels


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = set(zip(a.ravel().tolist(), b.ravel().tolist()))
    return ((a > 0) == (b > 0)).all() and len(pairs) == len(np.unique(a)) == len(np.unique(b))


def test_random_masks_label_as_a_flood_fill_does():
    rng = np.random.default_rng(0)
    for _ in range(200):
        h, w = rng.integers(1, 30, 2)
        mask = rng.random((h, w)) < rng.uniform(0.05, 0.75)
        assert same_partition(components(mask), flood_fill(mask))


def test_corners_connect_and_boxes_are_exclusive():
    mask = np.zeros((6, 8), bool)
    mask[0, 0] = mask[1, 1] = mask[2, 2] = True  # a diagonal: one component (8-connected)
    mask[4:6, 4:8] = True
    found = runs(mask)
    assert found.count == 2
    assert sorted(found.boxes().tolist()) == [[0, 0, 3, 3], [4, 4, 6, 8]]
    assert runs(np.zeros((3, 3), bool)).count == 0 and components(np.zeros((3, 3), bool)).max() == 0


def test_a_long_snake_is_one_component():
    """The case where propagating labels pixel by pixel needs thousands of rounds."""
    mask = np.zeros((200, 200), bool)
    mask[::4] = True
    mask[1::8, -1] = mask[2::8, -1] = mask[3::8, -1] = True
    mask[5::8, 0] = mask[6::8, 0] = mask[7::8, 0] = True
    assert runs(mask).count == 1
