"""The background's opening, closing and median, and the masks' growing, written with numpy: they must
give what PIL's rank filters give (edges repeated outwards), pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from digitlab.reading.preprocessing import _dilated, _max, _median, _min


def _pil(a: np.ndarray, f: type[ImageFilter.RankFilter], k: int) -> np.ndarray:
    return np.asarray(Image.fromarray(a.astype(np.float32)).filter(f(k)), dtype=np.float32)


@pytest.mark.parametrize("shape", [(64, 64), (64, 23), (5, 64), (2, 3), (1, 1)])
@pytest.mark.parametrize("k", [3, 5, 15])
def test_rank_filters_match_pil(shape: tuple[int, int], k: int) -> None:
    rng = np.random.default_rng(k * 100 + shape[1])
    a = (rng.random(shape) * 255).astype(np.float32)
    a[a < 80] = np.round(a[a < 80])  # ties too, as a photo's flat paper has
    assert np.array_equal(_max(a, k), _pil(a, ImageFilter.MaxFilter, k))
    assert np.array_equal(_min(a, k), _pil(a, ImageFilter.MinFilter, k))
    assert np.array_equal(_median(a, k), _pil(a, ImageFilter.MedianFilter, k))


@pytest.mark.parametrize("shape", [(40, 30), (1, 7), (3, 1)])
def test_dilated_is_a_three_by_three_maximum(shape: tuple[int, int]) -> None:
    mask = np.random.default_rng(shape[0]).random(shape) > 0.9
    assert np.array_equal(_dilated(mask), _pil(mask.astype(np.float32), ImageFilter.MaxFilter, 3) > 0)
    assert np.array_equal(~_dilated(~mask), _pil(mask.astype(np.float32), ImageFilter.MinFilter, 3) > 0)
